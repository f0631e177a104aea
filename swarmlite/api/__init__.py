"""Objects and wire shapes shared by every layer: the stored kinds, their states, ids, codec.

Owns what objects look like; owns no behaviour beyond encoding. Every struct is frozen,
keyword-only and gives every field but ``id`` a default, so later fields can be added
without breaking old data or callers.
"""

from swarmlite.api.cluster import (
    Cluster,
    ClusterSettings,
    ClusterSpec,
    JoinSecrets,
    RootCAMaterial,
)
from swarmlite.api.codec import (
    decode,
    decode_json,
    decode_object,
    encode,
    encode_json,
    encode_object,
    to_builtins,
)
from swarmlite.api.ids import is_id, new_id
from swarmlite.api.meta import Meta
from swarmlite.api.network import Network, NetworkSpec
from swarmlite.api.node import Node, NodeSpec, NodeStatus
from swarmlite.api.objects import KINDS, Object, ObjectT, kind_type
from swarmlite.api.secret import Config, ConfigSpec, Secret, SecretSpec
from swarmlite.api.service import (
    STACK_LABEL,
    ContainerSpec,
    EndpointSpec,
    FailureAction,
    FileRef,
    HealthCheck,
    JobSpec,
    Mount,
    NetworkAttachment,
    Placement,
    PortConfig,
    ResourceRequirements,
    Resources,
    RestartCondition,
    RestartPolicy,
    Service,
    ServiceMode,
    ServiceSpec,
    TaskTemplate,
    Ulimit,
    UpdateConfig,
    UpdateOrder,
    UpdateState,
    UpdateStatus,
)
from swarmlite.api.states import NodeAvailability, NodeRole, NodeState, TaskState
from swarmlite.api.task import Task, TaskSpec, TaskStatus

__all__ = [
    "KINDS",
    "STACK_LABEL",
    "Cluster",
    "ClusterSettings",
    "ClusterSpec",
    "Config",
    "ConfigSpec",
    "ContainerSpec",
    "EndpointSpec",
    "FailureAction",
    "FileRef",
    "HealthCheck",
    "JobSpec",
    "JoinSecrets",
    "Meta",
    "Mount",
    "Network",
    "NetworkAttachment",
    "NetworkSpec",
    "Node",
    "NodeAvailability",
    "NodeRole",
    "NodeSpec",
    "NodeState",
    "NodeStatus",
    "Object",
    "ObjectT",
    "Placement",
    "PortConfig",
    "ResourceRequirements",
    "Resources",
    "RestartCondition",
    "RestartPolicy",
    "RootCAMaterial",
    "Secret",
    "SecretSpec",
    "Service",
    "ServiceMode",
    "ServiceSpec",
    "Task",
    "TaskSpec",
    "TaskState",
    "TaskStatus",
    "TaskTemplate",
    "Ulimit",
    "UpdateConfig",
    "UpdateOrder",
    "UpdateState",
    "UpdateStatus",
    "decode",
    "decode_json",
    "decode_object",
    "encode",
    "encode_json",
    "encode_object",
    "is_id",
    "kind_type",
    "new_id",
    "to_builtins",
]

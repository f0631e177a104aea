"""Every compose key and what a cluster does with it: supported, ignored or refused.

Owns the treatment table below and the wording of its warnings and refusals. Does not own
how a supported key is read (normalize.py) or turned into a ServiceSpec (convert.py).
Invariant: no key is dropped silently. A key this table does not list is an error naming
it; an ignored key yields a ComposeWarning naming it and the reason; a refused key is a
ComposeError saying "not supported in a cluster".

Service keys
============

==========================  ===========  ==================================================
key                         treatment    notes
==========================  ===========  ==================================================
image                       supported    required (see build)
build                       refused/     without image: error "build the image first; stack
                            ignored      deploy needs image:"; with image: warning, ignored
command, entrypoint         supported    a string is split like a shell would; a list is kept
environment, env_file       supported    env_file (string, list, long form with required:)
                                         is read relative to the file that names it
labels                      supported    container labels (deploy.labels: service labels)
working_dir, user,          supported
hostname, stop_signal
stop_grace_period           supported    duration ("1m30s", "10s", "500ms")
init, read_only, tty,       supported
stdin_open
tmpfs, ulimits, cap_add,    supported
cap_drop, sysctls,
extra_hosts, dns, group_add
healthcheck                 supported    test (string: CMD-SHELL; list), interval, timeout,
                                         retries, start_period, start_interval, disable
logging                     supported    driver and options (logging_keys.py); no driver, or
                                         json-file without max-size: json-file rotated at
                                         max-size 10m, max-file 3 (api/logdriver.py)
ports                       supported    short ("8080:80", "80", "127.0.0.1:8080:80/udp",
                                         ranges) and long (mode ingress | host); a host IP is
                                         ignored with a warning (published on every address)
volumes                     supported    named volumes, binds (relative to the compose file),
                                         anonymous volumes, tmpfs; short and long form; a
                                         bind of /var/run/docker.sock (or /run/docker.sock)
                                         is given swarmlite's Docker API socket, with a
                                         warning, unless labels or deploy.labels set
                                         com.swarmlite.docker-socket: runtime
secrets, configs            supported    short and long form (source, target, uid, gid, mode)
networks                    supported    list or map with aliases; ipv4_address,
                                         ipv6_address, mac_address, priority, link_local_ips,
                                         driver_opts, gw_priority ignored with a warning
depends_on                  supported    list or map with condition (service_started,
                                         service_healthy, service_completed_successfully),
                                         required, restart; ordering for deploy only
deploy                      supported    see the deploy table
extends, profiles           supported    resolved while loading
scale                       supported    the replica count when deploy.replicas is absent
x-*                         kept         extension fields, kept and otherwise ignored
container_name              ignored      tasks are named <stack>_<service>.<slot>
restart                     ignored      use deploy.restart_policy
links, external_links       ignored      services reach each other by name on their networks
expose                      ignored      every port is reachable on the service's networks
develop                     ignored      a development-time setting
mac_address, domainname,    ignored      node-local container settings
dns_search, dns_opt,
security_opt, cgroup_parent,
storage_opt, shm_size,
oom_score_adj,
oom_kill_disable, isolation,
blkio_config, pull_policy,
platform, annotations,
attach, label_file,
post_start, pre_stop,
credential_spec, stop
cpus, cpu_count,            ignored      use deploy.resources
cpu_percent, cpu_shares,
cpu_quota, cpu_period,
cpu_rt_runtime,
cpu_rt_period, cpuset,
mem_limit, mem_reservation,
memswap_limit,
mem_swappiness, pids_limit
network_mode                refused      not supported in a cluster (tasks join overlays)
privileged, devices,        refused      when set: not supported in a cluster (a false
pid, ipc, userns_mode, uts,              or empty value is ignored with a warning)
cgroup, volumes_from,
device_cgroup_rules, gpus,
runtime, use_api_socket,
provider, models
==========================  ===========  ==================================================

Deploy keys
===========

mode (replicated, global, replicated-job, global-job), replicas, labels, placement
(constraints, preferences with spread, max_replicas_per_node), resources (limits and
reservations: cpus, memory, pids; reservations also generic_resources, counts the scheduler
places by; devices refused, as swarm has no device reservations: use generic_resources),
restart_policy (condition, delay, max_attempts, window), update_config and rollback_config
(parallelism, delay, failure_action, monitor, max_failure_ratio, order), endpoint_mode
(vip, dnsrr): all supported.

Top-level keys
==============

services, networks, volumes, secrets, configs, include: supported. ``version``: ignored
with a warning (obsolete). ``name``: ignored with a warning (the stack name is given on the
command line). ``x-*``: kept. Networks: driver (overlay only; others refused), external,
name, labels, ipam.config[0].subnet, internal, attachable supported; enable_ipv6,
driver_opts and the rest of ipam ignored with a warning. Volumes: driver, labels, external,
name supported; driver_opts ignored with a warning. Secrets and configs: file, environment,
content (configs), external, name, labels supported; template_driver and driver ignored
with a warning.
"""

from __future__ import annotations

SUPPORTED_SERVICE_KEYS = frozenset(
    {
        "image",
        "build",
        "command",
        "entrypoint",
        "environment",
        "env_file",
        "labels",
        "working_dir",
        "user",
        "hostname",
        "stop_signal",
        "stop_grace_period",
        "init",
        "read_only",
        "tty",
        "stdin_open",
        "tmpfs",
        "ulimits",
        "cap_add",
        "cap_drop",
        "sysctls",
        "extra_hosts",
        "dns",
        "group_add",
        "healthcheck",
        "ports",
        "volumes",
        "secrets",
        "configs",
        "networks",
        "depends_on",
        "deploy",
        "extends",
        "profiles",
        "scale",
        "logging",
    }
)

_RESOURCES = "use deploy.resources"
_LOCAL = "a node-local container setting"

IGNORED_SERVICE_KEYS: dict[str, str] = {
    "container_name": "tasks are named <stack>_<service>.<slot>",
    "restart": "use deploy.restart_policy",
    "links": "services reach each other by name on their networks",
    "external_links": "services reach each other by name on their networks",
    "expose": "every port is reachable on the service's networks",
    "develop": "a development-time setting",
    **{
        key: _LOCAL
        for key in (
            "mac_address",
            "domainname",
            "dns_search",
            "dns_opt",
            "security_opt",
            "cgroup_parent",
            "storage_opt",
            "shm_size",
            "oom_score_adj",
            "oom_kill_disable",
            "isolation",
            "blkio_config",
            "pull_policy",
            "platform",
            "annotations",
            "attach",
            "label_file",
            "post_start",
            "pre_stop",
            "credential_spec",
        )
    },
    **{
        key: _RESOURCES
        for key in (
            "cpus",
            "cpu_count",
            "cpu_percent",
            "cpu_shares",
            "cpu_quota",
            "cpu_period",
            "cpu_rt_runtime",
            "cpu_rt_period",
            "cpuset",
            "mem_limit",
            "mem_reservation",
            "memswap_limit",
            "mem_swappiness",
            "pids_limit",
        )
    },
}

REFUSED_SERVICE_KEYS: dict[str, str] = {
    "network_mode": "tasks join the stack's overlay networks; use networks:",
    "privileged": "tasks run unprivileged; use cap_add for what they need",
    "devices": "host devices differ from node to node",
    "pid": "tasks cannot share a host or container PID namespace",
    "ipc": "tasks cannot share a host or container IPC namespace",
    "userns_mode": "tasks use the runtime's user namespace",
    "uts": "tasks cannot share the host's UTS namespace",
    "cgroup": "tasks cannot share the host's cgroup namespace",
    "volumes_from": "tasks of one service may run on other nodes than another's",
    "device_cgroup_rules": "host devices differ from node to node",
    "gpus": "advertise GPUs on their nodes (--node-generic-resource gpu=<id>) and reserve "
    "them with deploy.resources.reservations.generic_resources",
    "runtime": "tasks use the node's runtime",
    "use_api_socket": "the runtime's API socket is not handed to tasks",
    "provider": "provider services are not supported",
    "models": "model runners are not supported",
}

ALWAYS_REFUSED = frozenset({"network_mode", "provider", "models"})

NETWORK_ATTACHMENT_IGNORED = frozenset(
    {
        "ipv4_address",
        "ipv6_address",
        "mac_address",
        "priority",
        "link_local_ips",
        "driver_opts",
        "gw_priority",
        "interface_name",
    }
)

BUILD_NEEDS_IMAGE = "build the image first; stack deploy needs image:"
NOT_IN_CLUSTER = "not supported in a cluster"

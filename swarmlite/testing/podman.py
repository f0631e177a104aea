"""A private Podman for tests and the lab: its Docker-compatible API service, apart from all else.

Owns one ``podman system service`` with everything of its own under one short directory
(``/tmp/swlp-XXXX`` or a lab host's ``podman/``): a containers.conf, a storage.conf and a
registries.conf written there and named by ``CONTAINERS_CONF``,
``CONTAINERS_STORAGE_CONF`` and ``CONTAINERS_REGISTRIES_CONF``, so that neither
/etc/containers nor /var/lib/containers nor another Podman is ever read or touched. Its
settings are those this machine needs and swarmlite expects:

- the open files and processes limits of the process that writes the configuration
  (`inherited_ulimits`), as containers inherit dockerd's;
- OCI runtime ``runc`` (crun fails on hybrid cgroup v1 hosts), cgroup manager
  ``cgroupfs`` (no systemd), ``cgroups = "no-conmon"`` (each conmon stays in the
  service's own cgroup, so a lab finds it there), events to a file, logs as
  ``k8s-file``;
- ``lock_type = "file"``: the default (a shared-memory segment ``/dev/shm/libpod_lock``
  used by every Podman of the machine, which a fresh instance frees whole at its first
  start) would let one instance take the locks of another's containers;
- short image names are Docker Hub's (``swl/web:1`` is ``docker.io/swl/web:1``), as
  dockerd has it; ``insecure_registries`` are reached over plain HTTP, as dockerd's
  ``--insecure-registry``.

Also owns `load_test_images`: Podman's ``POST /images/create?fromSrc=-`` ignores the tag
and refuses a HEALTHCHECK change, so the test images of ``testing.images`` are given to
it as a ``docker save`` archive (``POST /images/load``), which both daemons read the same.
Containers are placed by Podman under ``/libpod_parent/libpod-<id>`` in every cgroup
hierarchy (Podman has no daemon-wide cgroup parent); `container_cgroups` finds those of
this instance from its storage, so that a lab can end them even with the service gone.

Starting, waiting for ``/_ping`` and stopping are `testing.engineproc`'s, as dockerd's are.

Invariant: after `stop()`, nothing of this instance is left: its containers are removed,
its service and conmons are gone, nothing stays mounted under its directory, which is
deleted, with the cgroups of its containers. Foreign errors become FailedPrecondition.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import resource
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from swarmlite.errors import FailedPrecondition, RuntimeFailure
from swarmlite.log import kv
from swarmlite.testing.cleanup import remove_cgroup_tree
from swarmlite.testing.engineproc import EngineProcess, engine_request
from swarmlite.testing.images import TEST_IMAGES, TestImage, TestImages, busybox_path, rootfs_tar

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install Podman (Debian 12: `apt-get install -y podman`, as scripts/setup does) and run "
    "the tests as root"
)
_CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTAINER_CGROUP_PARENT = "libpod_parent"  # Podman's own, for cgroupfs
_PODMAN_NPROC = 32768


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def inherited_ulimits() -> list[str]:
    """Podman's default open files and processes limits for containers: the hard limits of
    this process, as a container inherits dockerd's. Podman asks for 1048576 of each
    otherwise, which runc cannot set where the service's hard limit is lower and root lacks
    CAP_SYS_RESOURCE (as in a container): every start would fail. Podman lowers its own
    processes limit to 32768 at start (4.3.1), so no more than that is asked for."""
    found = []
    for name, which, cap in (
        ("nofile", resource.RLIMIT_NOFILE, None),
        ("nproc", resource.RLIMIT_NPROC, _PODMAN_NPROC),
    ):
        hard = resource.getrlimit(which)[1]
        if hard == resource.RLIM_INFINITY:
            continue  # Podman's own default can be set
        limit = hard if cap is None else min(hard, cap)
        found.append(f"{name}={limit}:{limit}")
    return found


def write_config(root: Path, *, insecure_registries: Sequence[str] = ()) -> dict[str, str]:
    """Write the instance's three configuration files under ``root``; the environment that
    makes ``podman`` read them (and nothing of the machine's)."""
    root.mkdir(parents=True, exist_ok=True)
    containers = root / "containers.conf"
    storage = root / "storage.conf"
    registries = root / "registries.conf"
    containers.write_text(
        "\n".join(
            [
                "[containers]",
                'log_driver = "k8s-file"',
                'cgroups = "no-conmon"',
                f"default_ulimits = {_toml_list(inherited_ulimits())}",
                "[engine]",
                'runtime = "runc"',
                'cgroup_manager = "cgroupfs"',
                'lock_type = "file"',
                'events_logger = "file"',
                f"events_logfile_path = {json.dumps(str(root / 'events.log'))}",
                f"tmp_dir = {json.dumps(str(root / 'tmp'))}",
                f"static_dir = {json.dumps(str(root / 'storage' / 'libpod'))}",
                f"volume_path = {json.dumps(str(root / 'volumes'))}",
                "[network]",
                f"network_config_dir = {json.dumps(str(root / 'networks'))}",
                "",
            ]
        )
    )
    storage.write_text(
        "\n".join(
            [
                "[storage]",
                'driver = "overlay"',
                f"graphroot = {json.dumps(str(root / 'storage'))}",
                f"runroot = {json.dumps(str(root / 'run'))}",
                "",
            ]
        )
    )
    lines = ['unqualified-search-registries = ["docker.io"]', 'short-name-mode = "disabled"']
    for registry in insecure_registries:
        lines += ["[[registry]]", f"location = {json.dumps(registry)}", "insecure = true"]
    registries.write_text("\n".join([*lines, ""]))
    return {
        "CONTAINERS_CONF": str(containers),
        "CONTAINERS_STORAGE_CONF": str(storage),
        "CONTAINERS_REGISTRIES_CONF": str(registries),
    }


def service_argv(binary: str, socket_url: str) -> list[str]:
    """The API service on ``socket_url``, never timing out for lack of clients."""
    return [binary, "system", "service", "--time=0", socket_url]


def container_cgroups(root: Path) -> list[Path]:
    """The cgroup directories of the containers stored under ``root`` (ours only: by the ids
    in its storage), in every hierarchy, that exist now."""
    ids = []
    with contextlib.suppress(OSError):
        ids = [d.name for d in (root / "storage" / "overlay-containers").iterdir() if d.is_dir()]
    hierarchies = [_CGROUP_ROOT]
    with contextlib.suppress(OSError):
        hierarchies += [d for d in sorted(_CGROUP_ROOT.iterdir()) if d.is_dir()]
    found: list[Path] = []
    for top in hierarchies:
        for cid in ids:
            path = top / CONTAINER_CGROUP_PARENT / f"libpod-{cid}"
            if path.is_dir():
                found.append(path)
    return found


def holds(root: Path, pid: int) -> bool:
    """Whether process ``pid`` is in the cgroup of one of the containers stored under
    ``root`` (a container of this Podman, and of no other)."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return False
    own = {f"/{CONTAINER_CGROUP_PARENT}/libpod-{path.name}" for path in container_cgroups(root)}
    return any(line.split(":", 2)[-1] in own for line in lines)


def remove_container_cgroups(root: Path) -> list[Path]:
    """rmdir the (empty) cgroups of ``root``'s containers, and Podman's parent of them once
    no container of any Podman is left in it (rmdir refuses a cgroup that has children);
    what stayed of ``root``'s."""
    left: list[Path] = []
    for path in container_cgroups(root):
        left += remove_cgroup_tree(path)
    with contextlib.suppress(OSError):
        for top in [_CGROUP_ROOT, *sorted(_CGROUP_ROOT.iterdir())]:
            with contextlib.suppress(OSError):
                (top / CONTAINER_CGROUP_PARENT).rmdir()
    return left


# --------------------------------------------------------------------------- images


def _archive(image: TestImage, busybox: Path) -> bytes:
    """``image`` as a ``docker save`` archive: manifest.json, its config and one layer."""
    layer = rootfs_tar(image, busybox)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    container_config: dict[str, Any] = {"Cmd": image.cmd, "Env": image.env}
    if image.healthcheck is not None:
        check = image.healthcheck
        health: dict[str, Any] = {"Test": list(check.test)}
        if check.interval:
            health["Interval"] = round(check.interval * 1_000_000_000)
        if check.retries:
            health["Retries"] = check.retries
        container_config["Healthcheck"] = health
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": container_config,
            # Podman reads an image's health check from here (a build's container_config).
            "container_config": container_config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": "2024-01-01T00:00:00Z", "comment": "swarmlite test image"}],
        },
        sort_keys=True,
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [image.ref], "Layers": [layer_name]}]
    ).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in ((config_name, config), (layer_name, layer), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def load_test_images(socket_path: str | Path) -> TestImages:
    """Load every test image missing from the Podman (or dockerd) at ``socket_path``."""
    busybox: Path | None = None
    for image in TEST_IMAGES:
        status, _ = engine_request(socket_path, "GET", f"/images/{quote(image.ref)}/json")
        if status == 200:
            continue
        busybox = busybox or busybox_path()
        status, body = engine_request(
            socket_path,
            "POST",
            "/images/load?quiet=1",
            _archive(image, busybox),
            headers={"Content-Type": "application/x-tar"},
            timeout=120.0,
        )
        if status != 200 or b'"error' in body:
            raise RuntimeFailure(f"loading {image.ref} failed: {status} {body!r}")
        log.info("test image loaded %s", kv(image=image.ref))
    return TestImages()


# --------------------------------------------------------------------------- the service


class PodmanService(EngineProcess):
    """``PodmanService(root).start()`` ... ``stop()``; also a context manager.

    ``command_prefix`` runs the service under a command that execs it (in a network
    namespace: ``["nsenter", "--net=/run/netns/h1"]``, never ``ip netns exec``).
    """

    name = "podman system service"
    install_hint = INSTALL_HINT
    socket_name = "podman.sock"
    log_name = "podman.log"
    temp_prefix = "swlp-"

    def __init__(
        self,
        root: Path,
        *,
        command_prefix: Sequence[str] = (),
        insecure_registries: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(root, command_prefix=command_prefix, startup_timeout=startup_timeout)
        self._insecure = list(insecure_registries)

    def _binary(self) -> str:
        binary = shutil.which("podman")
        if binary is None:
            raise FailedPrecondition("podman is not installed", hint=INSTALL_HINT)
        if shutil.which("runc") is None:
            raise FailedPrecondition("runc is not installed", hint=INSTALL_HINT)
        return binary

    def _argv(self, binary: str) -> list[str]:
        self.env = write_config(self.root, insecure_registries=self._insecure)
        return service_argv(binary, self.url)

    def _release_cgroups(self) -> None:
        remove_container_cgroups(self.root)

"""Tiny local images for tests, built offline from the host's static busybox.

Owns `TEST_IMAGES` (what each test image is: command, health check, files) and
`ensure_test_images`, which imports each one into a dockerd through the Engine API
(``POST /images/create?fromSrc=-`` with a tar of a rootfs: ``/bin/busybox`` plus one
symlink per applet, the image's files, and its CMD/HEALTHCHECK/ENV as import changes).
No registry is involved. `testing.fakeruntime` reads `TEST_IMAGES` too, so that the fake
and the real daemon know the same images.

Does not own the daemon (`testing.dockerd`). Idempotent: an image already present is
left alone. Needs ``busybox-static`` (a dynamically linked busybox would not run alone).
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

from swarmlite.api import HealthCheck
from swarmlite.errors import FailedPrecondition, RuntimeFailure
from swarmlite.log import kv
from swarmlite.testing.dockerd import engine_request

log = logging.getLogger(__name__)

BUSYBOX_HINT = "install a static busybox (Debian: `apt-get install -y busybox-static`)"

# PID 1 ignores SIGTERM unless it traps it: the web images exit 0 on SIGTERM at once
# (the kernel then kills httpd with the rest of the container's pid namespace). The line
# it prints says the trap is in place: a stop before it would wait out the grace period.
_WEB_SCRIPT = b"""#!/bin/sh
trap 'exit 0' TERM INT
httpd -f -p 80 -h /www &
echo "serving on :80"
wait $!
"""


@dataclass(frozen=True)
class TestImage:
    """What one test image holds."""

    __test__ = False  # not a pytest class

    ref: str
    cmd: list[str]
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # path -> data, mode
    healthcheck: HealthCheck | None = None
    env: list[str] = field(default_factory=lambda: ["PATH=/bin"])


@dataclass(frozen=True)
class TestImages:
    """The references of the test images, as `ensure_test_images` made them."""

    __test__ = False

    busybox: str = "swl/busybox:1"  # CMD sh
    web_v1: str = "swl/web:1"  # busybox httpd on :80 serving "v1"; exits 0 on SIGTERM
    web_v2: str = "swl/web:2"  # the same, serving "v2"
    web_bad: str = "swl/web:bad"  # like web:1, with a health check that always fails


WEB_COMMAND = ["/bin/web"]
WEB_READY = "serving on :80"

TEST_IMAGES: tuple[TestImage, ...] = (
    TestImage(ref=TestImages.busybox, cmd=["sh"]),
    TestImage(
        ref=TestImages.web_v1,
        cmd=WEB_COMMAND,
        files={"bin/web": (_WEB_SCRIPT, 0o755), "www/index.html": (b"v1\n", 0o644)},
    ),
    TestImage(
        ref=TestImages.web_v2,
        cmd=WEB_COMMAND,
        files={"bin/web": (_WEB_SCRIPT, 0o755), "www/index.html": (b"v2\n", 0o644)},
    ),
    TestImage(
        ref=TestImages.web_bad,
        cmd=WEB_COMMAND,
        files={"bin/web": (_WEB_SCRIPT, 0o755), "www/index.html": (b"bad\n", 0o644)},
        healthcheck=HealthCheck(test=["CMD", "false"], interval=1.0, retries=1),
    ),
)


def busybox_path() -> Path:
    """The host's static busybox; FailedPrecondition if there is none."""
    found = shutil.which("busybox")
    if found is None:
        raise FailedPrecondition("busybox is not installed", hint=BUSYBOX_HINT)
    path = Path(found).resolve()
    info = subprocess.run(["file", "-L", str(path)], capture_output=True, text=True, check=False)
    if info.returncode == 0 and "dynamically linked" in info.stdout:
        raise FailedPrecondition(f"{path} is dynamically linked", hint=BUSYBOX_HINT)
    return path


def rootfs_tar(image: TestImage, busybox: Path) -> bytes:
    """The image's root filesystem as an uncompressed tar."""
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for directory in ("bin", "etc", "tmp", "www", "run"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        tar.add(str(busybox), arcname="bin/busybox")
        for applet in applets:
            if applet == "busybox" or f"bin/{applet}" in image.files:
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        for path, (data, mode) in sorted(image.files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _changes(image: TestImage) -> list[str]:
    changes = [f"CMD {json.dumps(image.cmd)}"]
    changes += [f"ENV {entry}" for entry in image.env]
    if image.healthcheck is not None:
        check = image.healthcheck
        options = f" --interval={round(check.interval * 1000)}ms" if check.interval else ""
        options += f" --retries={check.retries}" if check.retries else ""
        changes.append(f"HEALTHCHECK{options} CMD {json.dumps(check.test[1:])}")
    return changes


def ensure_test_images(docker_socket: str | Path) -> TestImages:
    """Import every test image missing from the daemon at `docker_socket`."""
    busybox: Path | None = None
    for image in TEST_IMAGES:
        status, _ = engine_request(docker_socket, "GET", f"/images/{quote(image.ref)}/json")
        if status == 200:
            continue
        busybox = busybox or busybox_path()
        repo, _, tag = image.ref.rpartition(":")
        query = urlencode(
            [("fromSrc", "-"), ("repo", repo), ("tag", tag)]
            + [("changes", c) for c in _changes(image)]
        )
        status, body = engine_request(
            docker_socket,
            "POST",
            f"/images/create?{query}",
            rootfs_tar(image, busybox),
            headers={"Content-Type": "application/x-tar"},
        )
        if status != 200 or b'"error' in body:
            raise RuntimeFailure(f"importing {image.ref} failed: {status} {body!r}")
        log.info("test image imported %s", kv(image=image.ref))
    return TestImages()

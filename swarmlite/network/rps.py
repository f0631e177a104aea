"""Receive packet steering (RPS) for a device of this node's network namespace.

wireguard-go hands each decrypted packet to the kernel with one write(2) on its TUN
device, and without RPS the kernel runs that packet's whole receive path inside the
write: routing, conntrack, VXLAN decapsulation, the overlay bridge, the veth into the
container and the container's TCP. wireguard-go's receive loop then waits for all of it,
one packet at a time. With RPS the write only queues the packet for a CPU's backlog, the
loop goes on decrypting, and the backlog handles packets in batches (which also lets GRO
merge the overlay's segments). `spread_receive` turns it on for every CPU this process
may use.

The setting lives in sysfs (/sys/class/net/<dev>/queues/rx-0/rps_cpus), and a sysfs
shows the devices of the network namespace that mounted it, which is seldom this one
(`nsenter --net` keeps the mounts it had). So both calls run a short `sh` in a private
mount namespace (`unshare --mount`) of this thread's network namespace, with a fresh
sysfs mounted over /sys, the way `ip netns exec` does; nothing outside that child sees
the mount. Errors become NetworkSetupFailure naming the device.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable

from swarmlite.errors import NetworkSetupFailure

_UNSHARE = ("unshare", "--mount", "--propagation", "private", "--")
_WRITE = 'mount -t sysfs sysfs /sys && cat > "/sys/class/net/$1/queues/rx-0/rps_cpus"'
_READ = 'mount -t sysfs sysfs /sys && cat "/sys/class/net/$1/queues/rx-0/rps_cpus"'
_TIMEOUT = 10.0


def cpu_mask(cpus: Iterable[int]) -> str:
    """`cpus` as sysfs writes a CPU bitmap: 32-bit hex words, most significant first, joined
    by commas ({0, 1} -> "00000003"; {0, 33} -> "00000002,00000001")."""
    bits = 0
    for cpu in cpus:
        if cpu < 0:
            raise ValueError(f"bad CPU number {cpu}")
        bits |= 1 << cpu
    words = [f"{bits & 0xFFFFFFFF:08x}"]
    while bits := bits >> 32:
        words.append(f"{bits & 0xFFFFFFFF:08x}")
    return ",".join(reversed(words))


def mask_cpus(mask: str) -> set[int]:
    """The CPUs in a sysfs bitmap ("00000003" -> {0, 1}); the inverse of cpu_mask."""
    try:
        bits = int(mask.strip().replace(",", ""), 16)
    except ValueError:
        raise ValueError(f"not a CPU bitmap: {mask!r}") from None
    return {cpu for cpu in range(bits.bit_length()) if bits >> cpu & 1}


async def spread_receive(ifname: str, cpus: Iterable[int] | None = None) -> None:
    """Steer packets received on `ifname` to `cpus` (default: every CPU we may run on)."""
    chosen = sorted(os.sched_getaffinity(0) if cpus is None else cpus)
    await _sysfs(ifname, _WRITE, cpu_mask(chosen), "spread received packets over the CPUs")


async def receive_cpus(ifname: str) -> set[int]:
    """The CPUs that packets received on `ifname` are steered to (empty: RPS is off)."""
    shown = await _sysfs(ifname, _READ, "", "read the receive steering")
    return mask_cpus(shown)


async def _sysfs(ifname: str, script: str, stdin: str, what: str) -> str:
    def failure(reason: str) -> NetworkSetupFailure:
        return NetworkSetupFailure(
            f"cannot {what} of {ifname}: {reason}", details={"ifname": ifname}
        )

    try:
        proc = await asyncio.create_subprocess_exec(
            *_UNSHARE,
            "sh",
            "-c",
            script,
            "sh",
            ifname,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise failure(str(exc)) from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), _TIMEOUT)
    except TimeoutError:
        proc.kill()  # our own child, by its pid
        await proc.wait()
        raise failure(f"no answer within {_TIMEOUT:g} s") from None
    if proc.returncode != 0:
        raise failure(err.decode(errors="replace").strip() or f"exit code {proc.returncode}")
    return out.decode()

"""The node mesh: this node's WireGuard interface, peered with every other node.

Owns this node's mesh keys (the current one and, during a rotation, the next one), its
interface (named after the node id, address and MTU 1420 from the managers' MeshState),
and the peer table: one WireGuard peer per other node, allowed to send from and receive
for that node's mesh address only (<address>/32), at the node's underlay endpoint, with a
25 s keepalive. Does not own the address plan (the managers' allocator), publishing the
keys (the daemon puts `public_key`, `next_key` and `endpoint` in its hello), when keys
rotate (rotation.py), or anything carried over the mesh (overlay.py).

Invariants: `apply` is idempotent and changes only what differs from the state it is
given (a peer whose key, endpoint, allowed IPs and keepalive already match is left alone,
so its session survives); peers that the state no longer lists are removed, so they can
no longer send into this node. Errors are NetworkSetupFailure (from wireguard.py) or
FailedPrecondition (a rotation step out of order).

Key rotation without dropping traffic, for a node A and each of its peers B:

1. A: `begin_rotation()` makes and stores the next key; the daemon publishes it as
   Node.status.mesh_next_key and the managers send it to every B as MeshPeer.next_key.
2. B: `apply` adds a second peer entry for A's next key: same endpoint, no allowed IPs,
   no keepalive. B still sends to and accepts from A's old key only.
3. A: `finish_rotation()` (once every B had time to apply step 2) stores the next key as
   the current one, switches the interface's private key and, in the same UAPI call,
   starts a handshake on every peer entry: each peer's current key, and its next key if
   it is rotating too. The daemon publishes the new key as mesh_public_key and clears
   mesh_next_key.
4. B: a watcher polls the interface every `rotation_poll` seconds while some peer has a
   next key; when the next key's entry has completed a handshake (or as soon as the
   state names it as the public key), B moves A's allowed IP to it and removes the
   old entry, in one UAPI call.

How long traffic can stall, with every B past step 2 when A finishes:
* B to A: not at all. A keeps the session it had with B as its "previous" keypair and
  still decrypts what B sends with it until B switches to the new entry (which by then
  has a confirmed session).
* A to B: from the handshake to B's next poll, so at most `rotation_poll` (50 ms) plus one
  UAPI round trip; packets A sends in that window arrive on an entry that does not yet own
  A's address and are dropped. Measured here: of a 500 datagrams/s UDP stream from A to B,
  0 to 2 were lost (none the other way); a request/response TCP stream paused once for
  about 0.2 s (one retransmission timeout) and its connection lived on. Making this
  direction lossless too would need B to move the address at the very moment A switches,
  which WireGuard gives no way to signal.
* A B that had not yet applied step 2 drops A's handshakes; WireGuard retries every 5 s,
  so A to B stalls until B learns the next key plus up to 5 s; B to A keeps working on
  the old session until B's rekey (after 2 minutes).
* A and B switching at about the same moment: a handshake to the other's current key
  finds a peer that has just dropped that key, but the one that the later of the two
  sends to the other's next key completes (the earlier one has switched by then), and
  each side's watcher moves the address over as in step 4, without waiting for the
  managers.
A restart in the middle is safe: the next key is on disk until it becomes the current one
(by rename), and a B that restarts sets up both entries again from its state.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

from swarmlite.api.control import MeshPeer, MeshState
from swarmlite.errors import FailedPrecondition, SwarmliteError
from swarmlite.network import keys
from swarmlite.network.wireguard import (
    DEFAULT_PORT,
    KEEPALIVE,
    DeviceStatus,
    PeerUpdate,
    WireGuard,
    interface_name,
)

log = logging.getLogger(__name__)

KEY_FILE = "private.key"
NEXT_KEY_FILE = "next.key"
ROTATION_POLL = 0.05  # seconds between looks at pending next keys' handshakes


@dataclass(frozen=True, slots=True)
class _Entry:
    """What one WireGuard peer entry should hold."""

    node_id: str
    endpoint: str
    allowed_ips: tuple[str, ...]
    keepalive: int


class Mesh:
    """This node's side of the WireGuard mesh, in the network namespace it is used in.

    Every coroutine must run on the same event loop, in the namespace the node's
    interface belongs to (wireguard-go starts there as a child process).
    """

    def __init__(
        self,
        node_id: str,
        data_dir: Path,
        *,
        listen_port: int = DEFAULT_PORT,
        underlay_addr: str,
        use_kernel: bool | None = None,
        rotation_poll: float = ROTATION_POLL,
    ) -> None:
        self.node_id = node_id
        self._dir = data_dir / "wireguard"
        self._underlay = underlay_addr
        self._wanted_port = listen_port
        self._port = listen_port
        self._poll = rotation_poll
        self._device = WireGuard(interface_name(node_id), self._dir, use_kernel=use_kernel)
        self._key = keys.load_or_create(self._dir / KEY_FILE)
        self._next = keys.load(self._dir / NEXT_KEY_FILE)
        self._started = False
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._peers: dict[str, MeshPeer] = {}  # node id -> what the state said
        self._pending: dict[str, str] = {}  # next key -> node id, awaiting its handshake
        self._promoted: dict[str, str] = {}  # node id -> next key seen handshaking
        self._endpoints: dict[str, str] = {}  # public key -> endpoint this node last set

    # ------------------------------------------------------------------ what the hello says

    @property
    def public_key(self) -> str:
        """This node's WireGuard public key (base64)."""
        return self._key.public_b64

    @property
    def next_key(self) -> str:
        """The key a rotation in progress will switch to (base64), else ""."""
        return self._next.public_b64 if self._next is not None else ""

    @property
    def listen_port(self) -> int:
        """The UDP port WireGuard listens on (the bound one, once started)."""
        return self._port

    @property
    def endpoint(self) -> str:
        """Where other nodes reach this node's WireGuard: "underlay-addr:port"."""
        host = self._underlay
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{self._port}"

    @property
    def device(self) -> WireGuard:
        return self._device

    @property
    def ifname(self) -> str:
        return self._device.ifname

    # ------------------------------------------------------------------ life

    async def start(self) -> None:
        """Create the interface with this node's key and port (no address yet)."""
        async with self._lock:
            await self._start_locked()

    async def _start_locked(self) -> None:
        if self._started:
            return
        await self._device.start()
        try:
            await self._device.configure(
                private_key=self._key.private, listen_port=self._wanted_port
            )
            self._port = (await self._device.status()).listen_port
        except BaseException:
            await self._device.stop()
            raise
        self._started = True
        self._endpoints.clear()
        self._watcher = asyncio.get_running_loop().create_task(
            self._watch(), name=f"mesh-rotation-watch:{self.ifname}"
        )
        log.info(
            "mesh started node=%s ifname=%s port=%d key=%s",
            self.node_id,
            self.ifname,
            self._port,
            self.public_key,
        )

    async def close(self) -> None:
        """Stop the watcher and remove the interface (and wireguard-go). Idempotent."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        async with self._lock:
            await self._device.stop()
            self._started = False
            self._pending.clear()

    async def set_listen_port(self, port: int) -> None:
        """Listen on another UDP port (0: any free port); the hello must then say so."""
        async with self._lock:
            self._wanted_port = port
            if self._started:
                await self._device.configure(listen_port=port)
                self._port = (await self._device.status()).listen_port

    # ------------------------------------------------------------------ the state

    async def apply(self, state: MeshState) -> None:
        """Make the interface and its peers match `state`; starts the interface if needed."""
        async with self._lock:
            await self._start_locked()
            await self._device.set_address(state.address)
            self._peers = {}
            for peer in state.peers:
                if peer.node_id == self.node_id:
                    continue
                problem = _invalid(peer)
                if problem:
                    log.warning("mesh peer skipped node=%s reason=%s", peer.node_id, problem)
                    continue
                self._peers[peer.node_id] = peer
            for node_id in set(self._promoted) - set(self._peers):
                del self._promoted[node_id]
            await self._converge(await self._device.status())

    async def _converge(self, status: DeviceStatus) -> None:
        wanted, pending = self._wanted()
        changes: list[PeerUpdate] = []
        for key, entry in wanted.items():
            have = status.peers.get(key)
            if have is None:
                changes.append(
                    PeerUpdate(
                        public_key=key,
                        endpoint=entry.endpoint,
                        allowed_ips=entry.allowed_ips,
                        keepalive=entry.keepalive,
                    )
                )
                continue
            # The endpoint is compared with what this node set, not with what the device
            # shows: WireGuard follows a peer that roams, and that must not be undone.
            endpoint = entry.endpoint if self._endpoints.get(key) != entry.endpoint else None
            same_ips = set(have.allowed_ips) == set(entry.allowed_ips)
            allowed = None if same_ips else entry.allowed_ips
            keepalive = None if have.keepalive == entry.keepalive else entry.keepalive
            if endpoint is None and allowed is None and keepalive is None:
                continue
            changes.append(
                PeerUpdate(
                    public_key=key, endpoint=endpoint, allowed_ips=allowed, keepalive=keepalive
                )
            )
        # Removals go last: an address moved to a new entry is taken from the old one first.
        gone = [key for key in status.peers if key not in wanted]
        changes.extend(PeerUpdate(public_key=key, remove=True) for key in gone)
        if changes:
            await self._device.configure(peers=changes)
            for change in changes:
                if change.remove:
                    self._endpoints.pop(change.public_key, None)
                elif change.endpoint is not None:
                    self._endpoints[change.public_key] = change.endpoint
            log.info(
                "mesh peers changed node=%s set=%d removed=%d pending=%d",
                self.node_id,
                len(changes) - len(gone),
                len(gone),
                len(pending),
            )
        self._pending = pending
        if pending:
            self._wake.set()

    def _wanted(self) -> tuple[dict[str, _Entry], dict[str, str]]:
        """(public key -> entry, next key awaiting its handshake -> node id)."""
        wanted: dict[str, _Entry] = {}
        pending: dict[str, str] = {}
        for node_id, peer in self._peers.items():
            promoted = self._promoted.get(node_id)
            if promoted == peer.public_key or promoted not in (peer.next_key, None):
                self._promoted.pop(node_id)  # the state caught up, or moved on
                promoted = None
            owner = promoted or peer.public_key
            wanted[owner] = _Entry(node_id, peer.endpoint, (f"{peer.mesh_address}/32",), KEEPALIVE)
            if peer.next_key and peer.next_key != owner:
                wanted[peer.next_key] = _Entry(node_id, peer.endpoint, (), 0)
                pending[peer.next_key] = node_id
        return wanted, pending

    # ------------------------------------------------------------------ rotation

    def begin_rotation(self) -> str:
        """Make (or keep) the next key and store it; returns it (base64) for the hello."""
        if self._next is None:
            pair = keys.generate()
            keys.save(self._dir / NEXT_KEY_FILE, pair)
            self._next = pair
            log.info("mesh rotation begun node=%s next=%s", self.node_id, pair.public_b64)
        return self._next.public_b64

    async def finish_rotation(self) -> str:
        """Switch to the next key; returns the new public key (base64) for the hello."""
        async with self._lock:
            pair = self._next
            if pair is None:
                raise FailedPrecondition(
                    "no mesh key rotation in progress",
                    hint="begin_rotation() first, and let peers learn the next key",
                )
            keys.replace(self._dir / NEXT_KEY_FILE, self._dir / KEY_FILE)
            old, self._key, self._next = self._key, pair, None
            if self._started:
                # Every entry handshakes, a peer's next key too: a peer that switched at
                # the same time answers only to that one.
                status = await self._device.status()
                kick = [
                    PeerUpdate(public_key=key, keepalive=KEEPALIVE, handshake_now=True)
                    for key in status.peers
                ]
                await self._device.configure(private_key=pair.private, peers=kick)
            log.info(
                "mesh rotation finished node=%s old=%s new=%s",
                self.node_id,
                old.public_b64,
                pair.public_b64,
            )
            return pair.public_b64

    async def _watch(self) -> None:
        """While peers have next keys, move their address to the next key once it handshakes."""
        while True:
            await self._wake.wait()
            try:
                async with self._lock:
                    if not self._pending or not self._started:
                        self._wake.clear()
                        continue
                    await self._promote(await self._device.status())
            except SwarmliteError as exc:
                log.warning("mesh rotation watch failed node=%s error=%s", self.node_id, exc)
            except Exception:  # a bug: keep watching, the next poll may succeed
                log.exception("mesh rotation watch crashed node=%s", self.node_id)
            await asyncio.sleep(self._poll)

    async def _promote(self, status: DeviceStatus) -> None:
        moved = False
        for key, node_id in list(self._pending.items()):
            entry = status.peers.get(key)
            if entry is None or entry.last_handshake <= 0:
                continue
            self._promoted[node_id] = key
            moved = True
            log.info("mesh peer rotated node=%s peer=%s key=%s", self.node_id, node_id, key)
        if moved:
            await self._converge(status)


def _invalid(peer: MeshPeer) -> str:
    """Why a peer from the state cannot be set up ("" if it can)."""
    try:
        keys.from_b64(peer.public_key)
        if peer.next_key:
            keys.from_b64(peer.next_key)
        ipaddress.IPv4Address(peer.mesh_address)
        host, _, port = peer.endpoint.rpartition(":")
        ipaddress.ip_address(host.strip("[]"))
        if not 0 < int(port) < 65536:
            return f"bad endpoint port in {peer.endpoint!r}"
    except (SwarmliteError, ValueError) as exc:
        return str(exc)
    return ""

"""Root CA rotation: the cross-signed root, the chains nodes present, and who trusts whom.

Each handshake is real TLS between two in-memory TLS objects (``ssl.MemoryBIO``), with the
contexts the cluster port uses, so OpenSSL's chain building is what is tested: a node that
trusts only the old root accepts a certificate from the new one when it comes with the
cross-signed root, and once the old root is dropped nothing it signed is accepted.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import msgspec
import pytest
from cryptography import x509

from swarmlite.api import Node, NodeSpec, NodeState, NodeStatus, RootCAMaterial
from swarmlite.ca import (
    CertRenewer,
    NodeCredentials,
    RootCA,
    client_context,
    issue_node_cert,
    live_context,
    read_credentials,
    server_context,
    write_credentials,
)
from swarmlite.ca.rotation import (
    cross_sign,
    finish,
    issued_by,
    join_pems,
    leaf_of,
    pending,
    renewed,
    signer,
    split_pems,
    start_rotation,
    trust_bundle,
)
from swarmlite.clock import SystemClock

CLUSTER = "cluster-a"


@pytest.fixture(scope="module")
def old() -> RootCA:
    return RootCA.create(CLUSTER)


@pytest.fixture(scope="module")
def new() -> RootCA:
    return RootCA.create(CLUSTER)


@pytest.fixture(scope="module")
def cross(old: RootCA, new: RootCA) -> bytes:
    return cross_sign(old, new)


def creds(ca: RootCA, node: str, *, trust: bytes, chain: bytes = b"") -> NodeCredentials:
    """A node certificate from ``ca``, presented with ``chain``, trusting ``trust``."""
    issued = issue_node_cert(ca, node, "worker", CLUSTER)
    return NodeCredentials(
        cert_pem=join_pems([issued.cert_pem, chain]), key_pem=issued.key_pem, ca_cert_pem=trust
    )


def handshake(client: ssl.SSLContext, server: ssl.SSLContext) -> None:
    """A TLS handshake between ``client`` and ``server`` in memory; ssl.SSLError if refused."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_side=False)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {c: False, s: False}
    for _ in range(20):
        for obj, out, other_in in ((c, c_out, s_in), (s, s_out, c_in)):
            if not done[obj]:
                try:
                    obj.do_handshake()
                    done[obj] = True
                except ssl.SSLWantReadError:
                    pass
            if data := out.read():
                other_in.write(data)
        if all(done.values()):
            # TLS 1.3: the server sees the client's certificate after the client is done;
            # a refusal then reaches the client on its first read.
            with pytest.raises(ssl.SSLWantReadError):
                c.read()
            return
    raise AssertionError("the handshake did not finish")


def test_the_cross_signed_root_is_the_new_root_issued_by_the_old(
    old: RootCA, new: RootCA, cross: bytes
) -> None:
    cert = x509.load_pem_x509_certificate(cross)

    assert cert.subject == new.cert.subject == old.cert.subject  # self-issued
    assert cert.public_key() == new.cert.public_key()
    assert issued_by(cross, old.cert_pem)
    assert not issued_by(cross, new.cert_pem)
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == new.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value


def test_a_node_that_trusts_only_the_old_root_accepts_the_new_chain(
    old: RootCA, new: RootCA, cross: bytes
) -> None:
    both = join_pems([old.cert_pem, new.cert_pem])
    rotated = creds(new, "m1", trust=both, chain=cross)
    behind = creds(old, "w1", trust=old.cert_pem)

    # The behind node calls the rotated one, and the other way round.
    handshake(client_context(behind), server_context(rotated))
    handshake(client_context(rotated), server_context(behind))


def test_without_the_cross_signed_root_the_old_trust_refuses_a_new_certificate(
    old: RootCA, new: RootCA
) -> None:
    rotated = creds(new, "m1", trust=join_pems([old.cert_pem, new.cert_pem]))
    behind = creds(old, "w1", trust=old.cert_pem)

    with pytest.raises(ssl.SSLError):
        handshake(client_context(behind), server_context(rotated))


def test_nodes_that_trust_both_roots_accept_either_certificate(
    old: RootCA, new: RootCA, cross: bytes
) -> None:
    both = join_pems([old.cert_pem, new.cert_pem])
    rotated = creds(new, "m1", trust=both, chain=cross)
    bare = creds(new, "m2", trust=both)
    behind = creds(old, "w1", trust=both)

    for client in (rotated, bare, behind):
        for server in (rotated, bare, behind):
            handshake(client_context(client), server_context(server))


def test_after_the_rotation_the_old_root_is_refused(old: RootCA, new: RootCA, cross: bytes) -> None:
    done = creds(new, "m1", trust=new.cert_pem)
    with_chain = creds(new, "m2", trust=new.cert_pem, chain=cross)
    left_behind = creds(old, "w9", trust=old.cert_pem)

    handshake(client_context(with_chain), server_context(done))
    handshake(client_context(done), server_context(with_chain))
    with pytest.raises(ssl.SSLError):
        handshake(client_context(left_behind), server_context(done))
    with pytest.raises(ssl.SSLError):
        handshake(client_context(done), server_context(left_behind))


def test_the_cluster_material_through_a_rotation(old: RootCA) -> None:
    material = RootCAMaterial(cert_pem=old.cert_pem, key_pem=old.key_pem)
    assert signer(material)[1] == b"" and trust_bundle(material) == old.cert_pem

    rotation = start_rotation(material, started_at=1.0)
    rotating = msgspec.structs.replace(material, rotation=rotation)
    root, chain = signer(rotating)
    assert root.cert_pem == rotation.cert_pem and root.cluster_id == CLUSTER
    assert chain == rotation.cross_signed_pem and issued_by(chain, old.cert_pem)
    assert split_pems(trust_bundle(rotating)) == [old.cert_pem, rotation.cert_pem]

    ready = Node(id="n1", spec=NodeSpec(), status=NodeStatus(state=NodeState.READY))
    down = Node(id="n2", spec=NodeSpec(), status=NodeStatus(state=NodeState.DOWN))
    assert pending(rotation, [ready, down]) == [ready]
    assert pending(renewed(rotation, "n1"), [ready, down]) == []
    assert renewed(renewed(rotation, "n1"), "n1").renewed == ("n1",)

    ended = finish(rotating)
    assert ended == RootCAMaterial(cert_pem=rotation.cert_pem, key_pem=rotation.key_pem)
    assert trust_bundle(ended) == rotation.cert_pem


def test_pem_helpers_keep_order_and_drop_repeats(old: RootCA, new: RootCA) -> None:
    bundle = join_pems([old.cert_pem, new.cert_pem, old.cert_pem])

    assert split_pems(bundle) == [old.cert_pem, new.cert_pem]
    assert leaf_of(bundle) == old.cert_pem
    assert split_pems(bundle.replace(b"\n", b"\r\n")) == [old.cert_pem, new.cert_pem]


def test_a_live_context_makes_connections_with_the_current_context(
    old: RootCA, new: RootCA, cross: bytes
) -> None:
    behind = creds(old, "w1", trust=old.cert_pem)
    server_now = [server_context(creds(new, "m1", trust=new.cert_pem))]
    live = live_context(lambda: server_now[0])
    assert live.verify_mode is ssl.CERT_REQUIRED

    with pytest.raises(ssl.SSLError):
        handshake(client_context(behind), live)
    server_now[0] = server_context(creds(new, "m1", trust=old.cert_pem, chain=cross))
    handshake(client_context(behind), live)


async def test_the_renewer_follows_the_cluster_ca(
    tmp_path: Path, old: RootCA, new: RootCA, cross: bytes
) -> None:
    write_credentials(tmp_path, creds(old, "w1", trust=old.cert_pem))
    renewer = CertRenewer(tmp_path, lambda: [], SystemClock())
    both = join_pems([old.cert_pem, new.cert_pem])

    # A rotation starts: trust both roots at once, and renew (the old leaf is stale).
    renewer.follow_ca(root_pem=new.cert_pem, trust_pem=both, chain_pem=cross, via="m:1")
    assert read_credentials(tmp_path).ca_cert_pem == both
    assert renewer._due.is_set() and renewer._stale()

    # Renewed (as a manager would answer): the new leaf with the cross-signed root.
    renewed_creds = creds(new, "w1", trust=both, chain=cross)
    write_credentials(tmp_path, renewed_creds)
    renewer = CertRenewer(tmp_path, lambda: [], SystemClock())
    renewer.follow_ca(root_pem=new.cert_pem, trust_pem=both, chain_pem=cross, via="m:1")
    assert not renewer._due.is_set() and not renewer._stale()

    # It ends: trust the new root only; the chain goes, the leaf stays.
    renewer.follow_ca(root_pem=new.cert_pem, trust_pem=new.cert_pem, chain_pem=b"", via="m:1")
    on_disk = read_credentials(tmp_path)
    assert on_disk.ca_cert_pem == new.cert_pem
    assert on_disk.cert_pem == leaf_of(renewed_creds.cert_pem)
    peer = creds(new, "m1", trust=new.cert_pem)
    handshake(renewer.client_ssl(), server_context(peer))
    handshake(client_context(peer), renewer.server_ssl)

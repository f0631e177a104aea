"""`swarmlite swarm ca`: show the cluster's root CA, rotate it, set how long certificates last.

Owns the flags and words of this one command, as `docker swarm ca` has them: without flags
it prints the root certificate; `--rotate` starts a rotation to a new root and, unless
`--detach`, follows it until every node holds a certificate from the new root and the old
one is gone (progress on stderr, unless `--quiet`), then prints the new root certificate;
`--cert-expiry` changes how long the certificates issued from now on last. Does not own the
rotation (the leader's, see ``ca.rotation``).
"""

from __future__ import annotations

import time

import click

from swarmlite.api.control import CARequest, CAView, SwarmUpdate
from swarmlite.api.routes import SWARM_CA, SWARM_UPDATE
from swarmlite.cli.commands import Duration, client

POLL_SECONDS = 0.5


@click.command("ca")
@click.option("--rotate", is_flag=True, help="Rotate the swarm CA to a new root (and key).")
@click.option(
    "--cert-expiry",
    type=Duration(),
    help="Validity period for node certificates (ns|us|ms|s|m|h) [default: 2160h0m0s].",
)
@click.option(
    "-d", "--detach", is_flag=True, help="Exit immediately instead of waiting for the rotation."
)
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output.")
def ca(rotate: bool, cert_expiry: float | None, detach: bool, quiet: bool) -> None:
    """Display and rotate the root CA."""
    rpc = client()
    if cert_expiry is not None:
        rpc.call(SWARM_UPDATE, SwarmUpdate(cert_expiry=cert_expiry))
    view = rpc.call(SWARM_CA, CARequest(rotate=rotate))
    said = ""
    while view.rotating and not detach:
        line = _progress(view)
        if line != said and not quiet:
            click.echo(line, err=True)
            said = line
        time.sleep(POLL_SECONDS)
        view = rpc.call(SWARM_CA, CARequest())
    if rotate and not detach and not quiet:
        click.echo("Root CA rotation done: every node trusts the new root only.", err=True)
    click.echo((view.new_cert_pem or view.cert_pem).decode("ascii").rstrip("\n"))


def _progress(view: CAView) -> str:
    waiting = ", ".join(view.pending) or "the leader"
    return f"rotating the root CA: {view.renewed} node(s) renewed, waiting for {waiting}"

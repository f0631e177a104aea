"""Who may see the dashboard, and where it listens: its address, its token, its URL.

Owns the ``--dashboard-addr`` syntax (``ADDR:PORT``, both required; ``[v6]:PORT`` for IPv6)
and its up-front check (a port another program holds is refused before the daemon
starts), the token file (``dashboard.token`` in the node's data dir: made on the
dashboard's first start, mode 0600, 32 random bytes in URL-safe base64), the note of where
the running dashboard listens (``dashboard.addr``: ``daemon --dashboard-addr`` may differ
from what ``node.json`` saved) and the URL that ``swarmlite dashboard`` prints. Does not
own the server (``dashboard.server``).

Invariant: the token never leaves the data dir but through that URL, and a token is
compared in constant time.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import logging
import os
import secrets
from pathlib import Path
from urllib.parse import quote

from swarmlite.errors import FailedPrecondition
from swarmlite.log import kv
from swarmlite.rpc.listen import check_listen_addr, parse_listen_addr

log = logging.getLogger(__name__)

TOKEN_FILE = "dashboard.token"
ADDR_FILE = "dashboard.addr"  # where the running dashboard listens (not secret)
TOKEN_MODE = 0o600
_WILDCARDS = ("0.0.0.0", "::", "")
_FLAG = "--dashboard-addr"
_EXAMPLE = "127.0.0.1:8765 (0.0.0.0:PORT for every address)"


def parse_addr(addr: str) -> tuple[str, int]:
    """``--dashboard-addr``: ADDR:PORT (``rpc.listen``)."""
    return parse_listen_addr(addr, _FLAG, _EXAMPLE)


def check_addr(addr: str) -> tuple[str, int]:
    """``parse_addr``, then make sure this host can listen there now."""
    return check_listen_addr(addr, _FLAG, "the dashboard", _EXAMPLE)


def _is_v6(host: str) -> bool:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).version == 6
    return False


# --------------------------------------------------------------------------- the token


def token_path(data_dir: Path) -> Path:
    return data_dir / TOKEN_FILE


def ensure_token(data_dir: Path) -> str:
    """The dashboard's token, made now (0600) if the data dir holds none yet."""
    path = token_path(data_dir)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, TOKEN_MODE)
    except FileExistsError:
        return read_token(data_dir)
    except OSError as exc:
        raise FailedPrecondition(f"cannot write the dashboard token {path}: {exc}") from exc
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
        f.flush()
        os.fsync(f.fileno())
    log.info("dashboard token made %s", kv(path=path))
    return token


def read_token(data_dir: Path) -> str:
    """The token kept in the data dir; its mode is narrowed to 0600 if someone widened it."""
    path = token_path(data_dir)
    try:
        mode = path.stat().st_mode & 0o777
        if mode != TOKEN_MODE:
            log.warning("dashboard token mode narrowed %s", kv(path=path, mode=oct(mode)))
            os.chmod(path, TOKEN_MODE)
        token = path.read_text().strip()
    except FileNotFoundError as exc:
        raise FailedPrecondition(
            f"{data_dir} holds no dashboard token yet",
            hint="the daemon makes it when the dashboard first starts: start the node with "
            "--dashboard-addr ADDR:PORT",
        ) from exc
    except OSError as exc:
        raise FailedPrecondition(f"cannot read the dashboard token {path}: {exc}") from exc
    if not token:
        raise FailedPrecondition(
            f"the dashboard token {path} is empty", hint="remove it and restart the daemon"
        )
    return token


def write_addr(data_dir: Path, addr: str) -> None:
    tmp = data_dir / f"{ADDR_FILE}.tmp"
    tmp.write_text(addr + "\n")
    tmp.replace(data_dir / ADDR_FILE)


def read_addr(data_dir: Path) -> str | None:
    """Where this node's dashboard listens, if it runs (or was killed running)."""
    try:
        return (data_dir / ADDR_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def forget_addr(data_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (data_dir / ADDR_FILE).unlink()


def token_matches(given: str | None, token: str) -> bool:
    """Whether ``given`` is the token, compared in constant time."""
    if not given:
        return False
    return hmac.compare_digest(given.encode(), token.encode())


def url(addr: str, token: str, *, advertise_host: str = "127.0.0.1") -> str:
    """The URL that opens the dashboard: a wildcard listen address is shown as the
    node's advertised host, the only address of it the cluster knows."""
    host, port = parse_addr(addr)
    if host in _WILDCARDS:
        host = advertise_host
    if _is_v6(host):
        host = f"[{host}]"
    return f"http://{host}:{port}/?token={quote(token, safe='')}"

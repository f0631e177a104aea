"""dashboard: a read-only web page of the cluster, served by a manager that asks for it.

Off unless ``--dashboard-addr ADDR:PORT`` is given to ``init`` or ``join`` (saved in
``node.json``) or to ``daemon`` (for that run); only a manager serves it. It reads the
cluster through the node's own control API over its unix socket, like the CLI and the
Docker API front end, and changes nothing.

Access: a token. The first start makes ``dashboard.token`` (0600) in the node's data dir;
``swarmlite dashboard`` prints the URL with it (``http://ADDR:PORT/?token=...``). The page
trades the token for an HttpOnly, SameSite=Strict cookie and drops it from the address bar;
scripts may send ``Authorization: Bearer TOKEN``. Every other request gets 401 and no
data. The server speaks plain HTTP (the cluster's CA is one no browser trusts): listen on
127.0.0.1 and reach it over an SSH tunnel, or put a TLS proxy in front.

What the page shows: nodes as columns and services as rows, each cell holding that
service's task boxes coloured by state; services with replicas (running/desired) and
update state; the EVENTS stream, kept by the server (the last 200) and polled by the page;
and a small chart per service of its running and desired replicas over the last minutes,
sampled by the dashboard itself from SERVICE_LS every 2 s (not the Prometheus per-task
samples, which are not on the control API). The page is ``static/index.html``, ``app.js``
and ``style.css``: no build step, nothing from the internet.
"""

from swarmlite.dashboard.access import (
    check_addr,
    ensure_token,
    parse_addr,
    read_addr,
    read_token,
    url,
)
from swarmlite.dashboard.server import Dashboard, DashboardServer, build_app

__all__ = [
    "Dashboard",
    "DashboardServer",
    "build_app",
    "check_addr",
    "ensure_token",
    "parse_addr",
    "read_addr",
    "read_token",
    "url",
]

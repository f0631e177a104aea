"""The dashboard in headless Chromium, against a real cluster in three states: healthy, a
node down, and a rolling update in progress.

One manager (m1, started by `swarmlite init --dashboard-addr 127.0.0.1:<port>`) and two
workers (w1, w2), each a real daemon started by the CLI with its own private dockerd (this
module's own cluster, `watched`). The stack is dashboard.yml: `web` (3 replicas) and `agent`
(global). For each state the test opens the URL that `swarmlite dashboard` prints in
Debian's `chromium` (`--headless --dump-dom`, then `--screenshot`) and checks what the page
rendered against what the control API says: node names and states, task boxes and their
states, replicas and update state. The screenshots and DOM dumps are kept under
`$SWARMLITE_ARTIFACTS/dashboard` (default `tests/artifacts/dashboard`, git-ignored); the test
prints where.

Marked `integration` (by tests/integration/conftest.py): `scripts/test` runs it, a plain
`pytest` does not. It needs root, docker.io, busybox-static and chromium (scripts/setup).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from swarmlite.api import TaskState
from swarmlite.api.control import NameRef, TaskFilter
from swarmlite.api.routes import SERVICE_INSPECT, TASK_LS
from swarmlite.errors import FailedPrecondition
from swarmlite.testing.loadfile import load_file

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
COMPOSE = HERE / "dashboard.yml"
STACK = "dash"
WEB, AGENT = f"{STACK}_web", f"{STACK}_agent"
NODES = ("m1", "w1", "w2")
WAIT = 90.0
MIN_PNG_BYTES = 20_000  # an empty 1400x1000 page is a few kB; ours, with boxes and text, more
BROWSER_TIMEOUT = 120.0

pytestmark = pytest.mark.timeout(360)

StackCluster = Any  # the stacks conftest's StackCluster


def _stack_harness() -> ModuleType:
    """This directory's conftest.py as a module of its own (as test_metrics.py loads it),
    for a cluster of our own with `--dashboard-addr` on init."""
    return load_file("swarmlite_stack_harness", HERE / "conftest.py")


@dataclass
class Watched:
    stacks: StackCluster
    addr: str  # where m1's dashboard listens
    url: str  # what `swarmlite dashboard` printed: with the token
    token: str
    artifacts: Path


def _artifacts() -> Path:
    root = Path(os.environ.get("SWARMLITE_ARTIFACTS", REPO / "tests" / "artifacts"))
    path = root / "dashboard"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watched]:
    """m1 (manager, with the dashboard), w1 and w2 (workers), dashboard.yml deployed."""
    if _browser() is None:
        pytest.fail(
            "the dashboard test needs Chromium: `apt-get install -y chromium` (scripts/setup)",
            pytrace=False,
        )
    stack_harness = _stack_harness()
    harness = stack_harness.harness
    stacks = stack_harness.StackCluster(
        harness.Cluster(tmp_path_factory.mktemp("dashboard").resolve())
    )
    addr = f"127.0.0.1:{harness.free_port()}"
    try:
        try:
            m1 = stacks.init("m1", "--dashboard-addr", addr)
            stacks.join("w1", "worker", m1)
            stacks.join("w2", "worker", m1)
            stacks.cluster.heal()
        except FailedPrecondition as exc:
            pytest.fail(
                f"the dashboard test needs private dockerds: {exc.message}\nhint: {exc.hint}",
                pytrace=False,
            )
        done = stacks.deploy(STACK, COMPOSE)
        assert done.returncode == 0, f"stack deploy exited {done.returncode}: {done.stderr}"
        url = stacks.cluster.ok("dashboard", "--data-dir", str(m1.data_dir)).strip()
        token = (m1.data_dir / "dashboard.token").read_text().strip()
        assert url == f"http://{addr}/?token={token}"
        yield Watched(stacks, addr, url, token, _artifacts())
    finally:
        stacks.close()


# --------------------------------------------------------------------------- the browser


def _browser() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(url: str, profile: Path, *args: str) -> str:
    """Run headless Chromium once on `url`; its stdout. Chromium and whatever it spawned
    (its own process group) are gone when this returns."""
    browser = _browser()
    assert browser is not None
    argv = [
        browser,
        "--headless",
        "--no-sandbox",  # root, in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
        "--virtual-time-budget=8000",  # three rounds of the page's polling
        *args,
        url,
    ]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=BROWSER_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"chromium did not finish within {BROWSER_TIMEOUT:g}s") from None
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # a helper left behind, if any
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {err[-2000:]}"
    return out


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def all_text(self) -> str:
        return "".join(self.text) + "".join(c.all_text() for c in self.children)

    def walk(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Elements below (and including) this one with this tag and these attributes
        (`class_` for class, `data_x` for data-x; a class matches one of the element's)."""
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        found = []
        for e in self.walk():
            if tag is not None and e.tag != tag:
                continue
            if all(
                v in e.attrs.get("class", "").split() if k == "class" else e.attrs.get(k) == v
                for k, v in wanted.items()
            ):
                found.append(e)
        return found

    def one(self, tag: str | None = None, **attrs: str) -> Element:
        found = self.find(tag, **attrs)
        assert len(found) == 1, f"{tag} {attrs}: {len(found)} found"
        return found[0]


_VOID = {"meta", "link", "br", "img", "input", "hr", "col", "source", "wbr"}


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = Element("#document", {})
        self._open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self._open[-1].children.append(element)
        if tag not in _VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, 0, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                return

    def handle_data(self, data: str) -> None:
        self._open[-1].text.append(data)


def _parse(html: str) -> Element:
    tree = _Tree()
    tree.feed(html)
    tree.close()
    return tree.root


def _look(watched: Watched, state: str, tmp_path: Path) -> Element:
    """Load the page in Chromium: keep its DOM and a screenshot as `state`.*; the DOM."""
    dom = _chromium(watched.url, tmp_path / "profile-dom", "--dump-dom")
    (watched.artifacts / f"{state}.html").write_text(dom)
    png = watched.artifacts / f"{state}.png"
    _chromium(watched.url, tmp_path / "profile-png", f"--screenshot={png}")
    assert png.is_file(), f"chromium wrote no screenshot at {png}"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > MIN_PNG_BYTES, f"{png}: {png.stat().st_size} bytes"
    page = _parse(dom)
    assert page.one("body").attrs.get("data-loaded") == "1", "the page never rendered the state"
    return page


def _announce(capsys: pytest.CaptureFixture[str], watched: Watched) -> None:
    with capsys.disabled():
        print(f"\ndashboard screenshots and DOM dumps: {watched.artifacts}")


# --------------------------------------------------------------------------- the cluster


def _get(watched: Watched, path: str, *, token: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://{watched.addr}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _samples(watched: Watched, service: str) -> int:
    status, body = _get(watched, "/api/metrics", token=watched.token)
    assert status == 200
    series = [s for s in json.loads(body)["services"].values() if s["name"] == service]
    return len(series[0]["samples"]) if series else 0


def _current(stacks: StackCluster, service: str) -> list[Any]:
    return [
        t
        for t in stacks.call(TASK_LS, TaskFilter(service=service)).tasks
        if t.desired_state is TaskState.RUNNING
    ]


def _converged(stacks: StackCluster) -> bool:
    web, agent = _current(stacks, WEB), _current(stacks, AGENT)
    return (
        len(web) == 3
        and len(agent) == 3
        and all(t.status.state is TaskState.RUNNING for t in web + agent)
    )


def _node_state(stacks: StackCluster, node: Any) -> str | None:
    row = stacks.cluster.row(stacks.cluster.node_ls(), node)
    return None if row is None else str(row.state)


def _boxes(page: Element, service: str) -> list[Element]:
    return page.one("table", id="grid").find("span", class_="task", data_service=service)


def _replicas(page: Element, service: str) -> str:
    row = page.one("table", id="services").one("tr", data_service=service)
    return row.one("td", class_="replicas").all_text()


# --------------------------------------------------------------------------- the tests


def test_without_the_token_the_dashboard_answers_401_and_nothing(watched: Watched) -> None:
    for path in ("/", "/static/app.js", "/api/state", "/api/events", "/api/metrics"):
        for token in (None, "not-the-token"):
            status, body = _get(watched, path, token=token)
            assert status == 401, (path, token, status)
            assert not any(word in body for word in (b"w1", b"w2", WEB.encode(), b"{")), body
    status, body = _get(watched, "/api/state", token=watched.token)
    assert status == 200 and b'"w2"' in body


def test_healthy(watched: Watched, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _announce(capsys, watched)
    stacks = watched.stacks
    stacks.cluster.wait("every task running", lambda: _converged(stacks), WAIT)
    stacks.cluster.wait("two replica samples", lambda: _samples(watched, WEB) >= 2, WAIT)
    hosts = stacks.node_names()

    page = _look(watched, "healthy", tmp_path)

    columns = page.one("table", id="grid").find("th", class_="node")
    assert sorted(c.attrs["data-node"] for c in columns) == list(NODES)
    assert {c.attrs["data-state"] for c in columns} == {"ready"}
    assert "leader" in page.one("th", class_="node", data_node="m1").all_text()
    # the boxes are the running tasks, on the nodes that run them
    for service in (WEB, AGENT):
        expected = sorted((hosts[t.node_id], t.id) for t in _current(stacks, service))
        boxes = _boxes(page, service)
        assert sorted((b.attrs["data-node"], b.attrs["data-task"]) for b in boxes) == expected
        assert {b.attrs["data-state"] for b in boxes} == {"running"}
        assert {b.attrs["data-outdated"] for b in boxes} == {"false"}
    assert _replicas(page, WEB) == "3/3"
    assert _replicas(page, AGENT) == "3/3"
    chart = page.one("svg", class_="chart", data_service=WEB)
    assert int(chart.attrs["data-samples"]) >= 2
    events = page.one("ol", id="events")
    created = events.find("li", data_type="service", data_action="create")
    assert any(WEB in e.all_text() for e in created), events.all_text()[:2000]
    assert "m1" in page.one("div", id="summary").all_text()


def test_a_node_down(watched: Watched, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _announce(capsys, watched)
    stacks = watched.stacks
    stacks.cluster.heal()
    w2 = stacks.cluster.nodes["w2"]
    stacks.cluster.kill(w2)
    try:
        stacks.cluster.wait("w2 down", lambda: _node_state(stacks, w2) == "down", WAIT)

        page = _look(watched, "node-down", tmp_path)

        w2_column = page.one("th", class_="node", data_node="w2")
        assert w2_column.attrs["data-state"] == "down"
        assert "down" in w2_column.all_text()
        for name in ("m1", "w1"):
            assert page.one("th", class_="node", data_node=name).attrs["data-state"] == "ready"
        assert "2 ready" in page.one("div", id="summary").all_text()
        # the down node's column still shows what it last held, marked down
        cells = page.one("table", id="grid").find("td", data_node="w2")
        assert cells and {c.attrs["data-node-state"] for c in cells} == {"down"}
        events = page.one("ol", id="events").find("li", data_type="node", data_action="update")
        assert any("w2" in e.all_text() and "down" in e.all_text() for e in events), [
            e.all_text() for e in events
        ]
    finally:
        stacks.cluster.heal()


def test_an_update_in_progress(
    watched: Watched, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _announce(capsys, watched)
    stacks = watched.stacks
    stacks.cluster.heal()
    stacks.cluster.wait("every task running", lambda: _converged(stacks), WAIT)
    # one task at a time, then 60 s before the next: long enough to be caught at it
    stacks.ok(
        "service",
        "update",
        "--detach",
        "--image",
        "swl/web:2",
        "--update-parallelism",
        "1",
        "--update-delay",
        "60s",
        WEB,
    )

    def first_replaced() -> bool:
        service = stacks.call(SERVICE_INSPECT, NameRef(ref=WEB)).service
        status = service.update_status
        new = [
            t
            for t in _current(stacks, WEB)
            if t.spec.container.image == "swl/web:2" and t.status.state is TaskState.RUNNING
        ]
        return status is not None and status.state.value == "updating" and len(new) == 1

    stacks.cluster.wait("the update's first new task running", first_replaced, WAIT)

    page = _look(watched, "updating", tmp_path)

    row = page.one("table", id="services").one("tr", data_service=WEB)
    update = row.one("td", class_="update")
    assert update.attrs["data-update"] == "updating"
    assert "updating" in update.all_text()
    assert row.one("td", class_="image").all_text() == "swl/web:2"
    boxes = _boxes(page, WEB)
    new = [b for b in boxes if "swl/web:2" in b.attrs["title"]]
    old = [b for b in boxes if "swl/web:1" in b.attrs["title"]]
    assert len(new) == 1 and new[0].attrs["data-state"] == "running", [b.attrs for b in boxes]
    assert new[0].attrs["data-outdated"] == "false"
    running_old = [b for b in old if b.attrs["data-state"] == "running"]
    assert len(running_old) == 2
    assert {b.attrs["data-outdated"] for b in running_old} == {"true"}
    assert all("old" in b.all_text() for b in running_old)
    # the agent is untouched
    assert {b.attrs["data-state"] for b in _boxes(page, AGENT)} == {"running"}

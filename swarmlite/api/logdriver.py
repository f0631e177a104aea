"""The rules of a task's log driver (``TaskTemplate.log_driver``) and the default one.

Owns the default: a service that names no driver logs with ``json-file`` rotated at
``max-size=10m``, ``max-file=3`` (at most 30 MB per task on its node), and a service that
names ``json-file`` (or only options) without a ``max-size`` gets the same rotation. Why:
dockerd's own default is ``json-file`` without rotation, so a chatty task fills the disk;
``json-file`` (rather than dockerd's ``local``) keeps ``service logs`` and ``docker logs``
working and keeps the files where log shippers (promtail, filebeat, fluent-bit) look for
them, ``containers/<id>/<id>-json.log``. A ``max-size`` given without ``max-file`` keeps
Docker's meaning (one file); no rotation at all is ``max-size`` large enough (dockerd
refuses ``-1``). A node whose dockerd was given another default driver in its daemon.json
(journald, fluentd, gelf: a team's log shipping) keeps it for services that name none, as
swarm does: the rotation is the default only where the node's own default is ``json-file``
(dockerd's, and the one that fills disks).

Also owns which drivers and options can never work, in the words dockerd uses later on a
node (found by trying each on dockerd 28): an empty or malformed driver name, an option
``json-file`` or ``local`` does not know, a ``max-size`` that is not a size (``10q``) or
not positive, a ``max-file`` below 1, a ``compress`` that is not a boolean or has nothing
to compress, and the options of every driver (``mode``, ``max-buffer-size``); and which
drivers keep nothing to read back (``none``), so that ``service logs`` says so.

Does not own whether a node has a driver or plugin (its runtime says so when the task
starts), nor the options of other drivers (syslog, gelf, plugins): theirs to check. Pure.
"""

from __future__ import annotations

import re

from swarmlite.api.service import LogDriver

JSON_FILE = "json-file"
LOCAL = "local"
NONE = "none"
# Docker's own drivers (dockerd 28, Linux); any other name is a plugin's.
BUILTIN = frozenset(
    {
        JSON_FILE,
        LOCAL,
        NONE,
        "journald",
        "syslog",
        "gelf",
        "fluentd",
        "awslogs",
        "splunk",
        "gcplogs",
        "logentries",
    }
)
DEFAULT_DRIVER = JSON_FILE
DEFAULT_MAX_SIZE = "10m"
DEFAULT_MAX_FILE = "3"
UNREADABLE = frozenset({NONE})  # output kept nowhere: nothing to read back
_ANY_DRIVER = frozenset({"mode", "max-buffer-size"})  # dockerd's own, for every driver
_FILE_OPTIONS = {
    JSON_FILE: frozenset(
        {"max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag"}
    ),
    LOCAL: frozenset({"max-size", "max-file", "compress"}),
}
MODES = ("blocking", "non-blocking")
# A driver, or a plugin as Docker names it ("grafana/loki-docker-driver:2.9", "loki").
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@-]*")
# Docker's sizes (go-units RAMInBytes): "10m", "1.5g", "512k", "10 MiB", "1024" bytes.
_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?([kmgtp])?i?b?", re.IGNORECASE)
_COUNT = re.compile(r"[0-9]+")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_TRUE = ("1", "t", "T", "TRUE", "true", "True")  # Go's strconv.ParseBool
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


class LogDriverProblem(ValueError):
    """What is wrong, and where: ``field`` is ``driver`` or ``options.<key>``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field
        self.reason = reason


def parse_size(text: str) -> int | None:
    """Bytes of a Docker size (``"10m"`` -> 10485760), None if it is not one."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        return None
    number, unit = match.groups()
    return int(float(number) * _UNITS[(unit or "").lower()])


def parse_bool(text: str) -> bool | None:
    """Go's ``strconv.ParseBool``, as dockerd reads ``compress``; None if not a boolean."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def effective(driver: LogDriver | None, node_default: str = DEFAULT_DRIVER) -> LogDriver:
    """The driver and options a task logs with: its service's, with the node's default
    driver and the rotation (module docstring) filled in."""
    name = driver.name if driver is not None and driver.name else node_default
    options = dict(driver.options) if driver is not None else {}
    if name == JSON_FILE and "max-size" not in options:
        options["max-size"] = DEFAULT_MAX_SIZE
        options.setdefault("max-file", DEFAULT_MAX_FILE)
    return LogDriver(name=name, options=options)


def readable(driver: LogDriver | None) -> bool:
    """Whether what a task wrote can be read back (``service logs``)."""
    return effective(driver).name not in UNREADABLE


def check_log_driver(driver: LogDriver, *, partial: bool = False) -> None:
    """LogDriverProblem for the first thing in ``driver`` that can never work. A name ""
    is the default driver. ``partial``: a compose file that names no driver, whose other
    options may come from another file: only the forms of the values are checked."""
    if driver.name and not _NAME.fullmatch(driver.name):
        raise LogDriverProblem("driver", f'"{driver.name}" is not a log driver or plugin name')
    for key in driver.options:
        if not key.strip():
            raise LogDriverProblem("options", "has an option with an empty name")
    used = effective(driver)
    name, options = used.name, used.options
    if partial:
        _check_values(options)
        return
    _check_common(options)
    known = _FILE_OPTIONS.get(name)
    if known is None:
        return  # another driver's options are its own to check
    for key in options:
        if key not in known and key not in _ANY_DRIVER:
            allowed = ", ".join(sorted(known | _ANY_DRIVER))
            raise LogDriverProblem(
                f"options.{key}", f"is not an option of the {name} driver (it has {allowed})"
            )
    _check_values(options)
    _check_files(name, options)


def _check_common(options: dict[str, str]) -> None:
    mode = options.get("mode")
    if mode is not None and mode not in ("", *MODES):
        raise LogDriverProblem(
            "options.mode", f'must be "blocking" or "non-blocking", got "{mode}"'
        )
    buffer = options.get("max-buffer-size")
    if buffer is not None:
        if mode != "non-blocking":
            raise LogDriverProblem("options.max-buffer-size", "needs mode=non-blocking")
        if parse_size(buffer) is None:
            raise LogDriverProblem("options.max-buffer-size", f'must be a size, got "{buffer}"')


def _check_values(options: dict[str, str]) -> None:
    """The forms of the values, as every driver that has these options reads them."""
    size_text = options.get("max-size")
    if size_text is not None and parse_size(size_text) is None:
        raise LogDriverProblem(
            "options.max-size", f'must be a size such as "10m" or "1g", got "{size_text}"'
        )
    files_text = options.get("max-file")
    if files_text is not None and (not _COUNT.fullmatch(files_text) or int(files_text) < 1):
        raise LogDriverProblem(
            "options.max-file", f'must be a whole number of at least 1, got "{files_text}"'
        )
    compress_text = options.get("compress")
    if compress_text is not None and parse_bool(compress_text) is None:
        raise LogDriverProblem(
            "options.compress", f'must be "true" or "false", got "{compress_text}"'
        )


def _check_files(name: str, options: dict[str, str]) -> None:
    """The rules between the options of a file driver."""
    size_text = options.get("max-size")
    if size_text is not None and parse_size(size_text) == 0 and name == JSON_FILE:
        raise LogDriverProblem("options.max-size", "must be more than 0")
    files = int(options.get("max-file", "1"))
    compress = parse_bool(options.get("compress", "false"))
    if compress and name == JSON_FILE and (files < 2 or size_text is None):
        raise LogDriverProblem(
            "options.compress", "needs max-size and a max-file of 2 or more (files to compress)"
        )

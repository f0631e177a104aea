"""`swarmlite secret ...` and `swarmlite config ...` against a fake daemon: what `create`
sends (from a file, from standard input) and what it refuses before calling, the `ls`
table, `inspect` (a secret's content never shown, a config's shown), and `rm` with a
reference that fails."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from swarmlite.api import Config, ConfigSpec, Secret, SecretSpec
from swarmlite.api.control import BlobCreate, BlobList, BlobView, ListRequest, NameRef
from swarmlite.api.routes import (
    CONFIG_CREATE,
    CONFIG_INSPECT,
    CONFIG_LS,
    CONFIG_RM,
    SECRET_CREATE,
    SECRET_INSPECT,
    SECRET_LS,
)
from swarmlite.errors import FailedPrecondition, NotFound
from swarmlite.manager.controlapi.blobs import check_create, shown

DB_ID = "7q2w8e5r4t6y1u0io3k9x0c1m"
SITE_ID = "0c1m7q2w8e5r4t6y1u0io3k9x"


def secret(name: str = "db_pass", data: bytes = b"hunter2", **meta: Any) -> Secret:
    return Secret(id=meta.pop("id", DB_ID), spec=SecretSpec(name=name, data=data), **meta)


def config(
    name: str = "site",
    data: bytes = b"listen 80;\n",
    labels: dict[str, str] | None = None,
    **meta: Any,
) -> Config:
    spec = ConfigSpec(name=name, data=data, labels=labels or {})
    return Config(id=meta.pop("id", SITE_ID), spec=spec, **meta)


def created(kind: type[Secret] | type[Config], object_id: str) -> Any:
    """A create handler with the server's own checks, answering what the server would."""

    def create(request: BlobCreate) -> BlobView:
        check_create(kind, request.name, request.data)
        if kind is Secret:
            made: Secret | Config = secret(request.name, request.data, id=object_id)
        else:
            made = config(request.name, request.data, id=object_id)
        return shown(made, [])

    return create


# --------------------------------------------------------------------------- create


def test_secret_create_sends_the_file_s_content_and_labels_and_prints_the_id(
    daemon: Any, run: Any, tmp_path: Path
) -> None:
    daemon.on(SECRET_CREATE, created(Secret, DB_ID))
    source = tmp_path / "pass.txt"
    source.write_bytes(b"hunter2\n\x00\xff")

    result = run("secret", "create", "-l", "team=shop", "--label", "tier", "db_pass", str(source))

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(SECRET_CREATE) == [
        BlobCreate(name="db_pass", data=b"hunter2\n\x00\xff", labels={"team": "shop", "tier": ""})
    ]
    assert result.stdout == f"{DB_ID}\n"


def test_config_create_reads_standard_input_for_a_dash(daemon: Any, run: Any) -> None:
    daemon.on(CONFIG_CREATE, created(Config, SITE_ID))

    result = run("config", "create", "site", "-", input=b"listen 80;\n")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(CONFIG_CREATE) == [BlobCreate(name="site", data=b"listen 80;\n")]
    assert daemon.requests(SECRET_CREATE) == []
    assert result.stdout == f"{SITE_ID}\n"


@pytest.mark.parametrize(
    ("content", "source", "expected"),
    [
        (None, "missing.txt", "cannot read {dir}/missing.txt: No such file or directory"),
        (b"", "empty.txt", "{dir}/empty.txt is empty: there is nothing to store"),
        (b"x" * (500 * 1024 + 1), "big.txt", "{dir}/big.txt is larger than 500 KiB"),
    ],
)
def test_create_refuses_a_missing_empty_or_too_large_file_without_calling_the_daemon(
    daemon: Any,
    run: Any,
    tmp_path: Path,
    content: bytes | None,
    source: str,
    expected: str,
) -> None:
    if content is not None:
        (tmp_path / source).write_bytes(content)

    result = run("secret", "create", "db_pass", str(tmp_path / source))

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: Invalid value: " + expected.format(dir=tmp_path),
        "hint: `swarmlite secret create --help` shows the usage",
    ]
    assert result.stdout == ""
    assert daemon.calls == []


def test_empty_standard_input_is_refused_too(daemon: Any, run: Any) -> None:
    result = run("config", "create", "site", "-", input=b"")

    assert result.exit_code == 2
    assert "standard input is empty: there is nothing to store" in result.stderr
    assert daemon.calls == []


def test_create_shows_the_server_s_refusal_of_a_bad_name(
    daemon: Any, run: Any, tmp_path: Path
) -> None:
    daemon.on(SECRET_CREATE, created(Secret, DB_ID))
    source = tmp_path / "pass.txt"
    source.write_bytes(b"hunter2")

    result = run("secret", "create", "db pass", str(source))

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: secret name 'db pass' is not valid",
        "hint: use letters, digits, '_', '.' and '-', starting with a letter or digit, "
        "at most 64 characters",
    ]


# --------------------------------------------------------------------------- ls, inspect


def test_ls_shows_ids_names_and_ages(daemon: Any, run: Any) -> None:
    now = time.time()
    daemon.on(
        SECRET_LS,
        lambda _: BlobList(
            items=[
                shown(secret("z_token", id=SITE_ID, created_at=now - 7200), []),
                shown(secret(created_at=now - 180, updated_at=now - 65), ["shop_db"]),
            ]
        ),
    )

    result = run("secret", "ls")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(SECRET_LS) == [ListRequest()]
    assert [re.split(r" {3,}", line) for line in result.stdout.splitlines()] == [
        ["ID", "NAME", "DRIVER", "CREATED", "UPDATED"],
        [DB_ID, "db_pass", "3 minutes ago", "About a minute ago"],
        [SITE_ID, "z_token", "2 hours ago", "2 hours ago"],
    ]
    quiet = run("secret", "ls", "-q")
    assert quiet.stdout.split() == [DB_ID, SITE_ID]


def test_ls_sends_the_filters_and_takes_a_template(daemon: Any, run: Any) -> None:
    daemon.on(
        CONFIG_LS,
        lambda _: BlobList(items=[shown(config(labels={"env": "prod"}, created_at=1.0), [])]),
    )

    result = run(
        "config", "ls", "-f", "name=si", "--filter", "label=env", "--format",
        'table {{.Name}}\t{{.Label "env"}}\t{{.Labels}}',
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(CONFIG_LS) == [ListRequest(filters={"name": ["si"], "label": ["env"]})]
    assert result.stdout.splitlines() == ["NAME   env    LABELS", "site   prod   env=prod"]
    as_json = run("config", "ls", "--format", "json")
    assert json.loads(as_json.stdout)["Name"] == "site"
    assert sorted(json.loads(as_json.stdout)) == ["CreatedAt", "ID", "Labels", "Name", "UpdatedAt"]


def test_ls_with_a_bad_filter_calls_nothing(daemon: Any, run: Any) -> None:
    result = run("secret", "ls", "-f", "name")

    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == "error: bad format of filter (expected name=value)"
    assert daemon.calls == []


def test_inspect_is_dockers_json_without_a_secret_s_content(daemon: Any, run: Any) -> None:
    daemon.on(SECRET_INSPECT, lambda req: shown(secret(), ["shop_db"]))
    daemon.on(CONFIG_INSPECT, lambda req: shown(config(), ["shop_web"]))

    shown_secret = run("secret", "inspect", "db_pass")
    shown_config = run("config", "inspect", "site")

    assert shown_secret.exit_code == 0, shown_secret.stderr
    [view] = json.loads(shown_secret.stdout)
    assert view["ID"] == DB_ID
    assert view["Spec"] == {"Name": "db_pass", "Labels": {}}
    assert shown_secret.stdout.startswith('[\n    {\n        "ID": ')
    assert b"hunter2" not in shown_secret.stdout_bytes
    [view] = json.loads(shown_config.stdout)
    assert base64.b64decode(view["Spec"]["Data"]) == b"listen 80;\n"
    assert daemon.requests(CONFIG_INSPECT) == [NameRef(ref="site")]


def test_inspect_format_and_pretty(daemon: Any, run: Any) -> None:
    daemon.on(
        CONFIG_INSPECT,
        lambda req: shown(config(labels={"env": "prod"}, created_at=1_700_000_000.5), []),
    )

    name = run("config", "inspect", "-f", "{{.Spec.Name}} {{json .Spec.Labels}}", "site")
    pretty = run("config", "inspect", "--pretty", "site")

    assert name.stdout == 'site {"env":"prod"}\n'
    assert pretty.exit_code == 0, pretty.stderr
    assert pretty.stdout.splitlines() == [
        f"ID:\t\t\t{SITE_ID}",
        "Name:\t\t\tsite",
        "Labels:",
        " - env=prod",
        "Created at:            \t2023-11-14 22:13:20.5 +0000 utc",
        "Updated at:            \t2023-11-14 22:13:20.5 +0000 utc",
        "Data:",
        "listen 80;",
        "",  # the data's own newline, then the template's
    ]


def test_inspect_shows_what_it_found_and_fails_for_what_it_did_not(daemon: Any, run: Any) -> None:
    def inspect(request: NameRef) -> BlobView:
        if request.ref != "db_pass":
            raise NotFound(f"secret {request.ref!r} not found")
        return shown(secret(), [])

    daemon.on(SECRET_INSPECT, inspect)

    result = run("secret", "inspect", "db_pass", "nope")

    assert result.exit_code == 1
    assert [v["Spec"]["Name"] for v in json.loads(result.stdout)] == ["db_pass"]
    assert "secret 'nope' not found" in result.stderr


# --------------------------------------------------------------------------- rm


def test_rm_removes_each_and_reports_the_one_in_use(daemon: Any, run: Any) -> None:
    def rm(request: NameRef) -> BlobView:
        if request.ref == "site":
            raise FailedPrecondition(
                "config site is in use by service shop_web",
                hint="remove those services (or their stacks) first",
            )
        return shown(config(request.ref), [])

    daemon.on(CONFIG_RM, rm)

    result = run("config", "rm", "old_site", "site")

    assert result.exit_code == 1
    assert result.stdout == "old_site\n"
    assert result.stderr.splitlines() == [
        "error: config site is in use by service shop_web",
        "hint: remove those services (or their stacks) first",
    ]
    assert daemon.requests(CONFIG_RM) == [NameRef(ref="old_site"), NameRef(ref="site")]

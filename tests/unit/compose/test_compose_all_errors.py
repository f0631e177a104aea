"""Every problem of a file at once, each with file:line:column and a "did you mean"."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
from click.testing import CliRunner

from swarmlite.cli.main import cli
from swarmlite.compose import load_stack
from swarmlite.errors import ComposeError, ComposeErrors, InvalidArgument, from_code

BROKEN = """\
services:
  web:
    imgae: nginx
    deploy:
      replica: 2
      mode: replicatd
    read_only: maybe
    ports: ["70000:80"]
  db:
    image: postgres
    stop_grace_period: 10 seconds
    healthcheck: {intervl: 5s}
networkz:
  front: {}
"""

EXPECTED = [
    'compose.yml:3:5: services.web.imgae is not a known service key; did you mean "image"?',
    "compose.yml:5:7: services.web.deploy.replica is not a known key (allowed here: "
    "endpoint_mode, ",
    'compose.yml:6:13: services.web.deploy.mode must be one of "replicated", "global", '
    '"replicated-job", "global-job", got "replicatd"; did you mean "replicated"?',
    'compose.yml:7:16: services.web.read_only must be a boolean (true or false), got "maybe"',
    "compose.yml:8:13: services.web.ports[0]: port 70000 is out of range (1-65535)",
    "compose.yml:11:24: services.db.stop_grace_period must be a duration",
    "compose.yml:12:19: services.db.healthcheck.intervl is not a known key (allowed here: ",
    "compose.yml:13:1: networkz is not a known top-level key (allowed: ",
]


def test_stack_config_prints_every_problem_of_the_file(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text(BROKEN)

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        result = CliRunner().invoke(cli, ["stack", "config", "-c", "compose.yml"])

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"error: {len(EXPECTED)} problems in compose.yml:"
    assert len(lines) == 1 + len(EXPECTED)
    for line, expected in zip(lines[1:], EXPECTED, strict=True):
        assert line.startswith("  " + expected), line
    assert lines[2].endswith('; did you mean "replicas"?')
    assert lines[7].endswith('; did you mean "interval"?')
    assert lines[8].endswith('; did you mean "networks"?')


def test_the_problems_travel_together_and_one_alone_is_itself(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text(BROKEN)
    with pytest.raises(ComposeErrors) as several:
        load_stack([tmp_path / "compose.yml"], env={})
    assert len(several.value.problems) == len(EXPECTED)
    assert (several.value.line, several.value.column) == (3, 5)  # the first one's
    assert [p["line"] for p in several.value.details["problems"]] == [3, 5, 6, 7, 8, 11, 12, 13]
    # Over the wire it comes back as an InvalidArgument with the same text.
    again = from_code(several.value.code, several.value.message, None, several.value.details)
    assert type(again) is InvalidArgument and again.message == several.value.message

    (tmp_path / "compose.yml").write_text("services:\n  web:\n    image: a\n    imgae: b\n")
    with pytest.raises(ComposeError) as one:
        load_stack([tmp_path / "compose.yml"], env={})
    assert not isinstance(one.value, ComposeErrors)
    assert str(one.value).endswith(
        'services.web.imgae is not a known service key; did you mean "image"?'
    )


def test_references_across_the_stack_are_all_told_with_the_close_name(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text(
        dedent(
            """\
            services:
              web:
                image: a
                secrets: [db_passwd]
                networks: [frontend]
                depends_on: [dbb]
              db: {image: b}
            secrets:
              db_password: {environment: PW}
            networks:
              front-end: {}
            """
        )
    )
    with pytest.raises(ComposeErrors) as error:
        load_stack([tmp_path / "compose.yml"], env={"PW": "x"})
    messages = [p.message.split(": ", 1)[1] for p in error.value.problems]
    assert messages == [
        "services.web.secrets refers to 'db_passwd', which the top-level secrets do not "
        'define; did you mean "db_password"?',
        "services.web.networks refers to 'frontend', which the top-level networks do not "
        'define; did you mean "front-end"?',
        "services.web.depends_on names 'dbb', which is not a service of the stack; did you "
        'mean "db"?',
    ]


def test_checks_across_the_stack_wait_for_the_values_to_be_right(tmp_path: Path) -> None:
    # A bad image value is the one problem: "image is required" would only follow from it.
    (tmp_path / "compose.yml").write_text("services:\n  web:\n    image: [a]\n")
    with pytest.raises(ComposeError) as error:
        load_stack([tmp_path / "compose.yml"], env={})
    assert not isinstance(error.value, ComposeErrors)
    assert "services.web.image must be a string" in str(error.value)


def test_every_unset_required_variable_is_told(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text(
        "services:\n  web:\n    image: ${IMAGE:?set the image}\n    user: ${RUN_AS:?who runs it}\n"
    )
    with pytest.raises(ComposeErrors) as error:
        load_stack([tmp_path / "compose.yml"], env={})
    assert [
        (p.line, "IMAGE" in p.message, "RUN_AS" in p.message) for p in error.value.problems
    ] == [
        (3, True, False),
        (4, False, True),
    ]


def test_problems_of_several_files_are_told_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("services:\n  web: {image: a, tty: perhaps}\n")
    (tmp_path / "b.yml").write_text("services:\n  web: {init: sometimes}\n")
    with pytest.raises(ComposeErrors) as error:
        load_stack([tmp_path / "a.yml", tmp_path / "b.yml"], env={})
    assert [Path(p.path).name for p in error.value.problems] == ["a.yml", "b.yml"]
    assert error.value.message.startswith(f"2 problems in {tmp_path / 'a.yml'}, ")

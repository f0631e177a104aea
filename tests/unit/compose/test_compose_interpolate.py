"""Interpolation: every form the compose specification names, and dotenv files."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlite.compose import load_stack
from swarmlite.compose.interpolate import interpolate, parse_dotenv
from swarmlite.compose.loader import Mark
from swarmlite.errors import ComposeError

HERE = Mark("compose.yml", 3, 5)
ENV = {"SET": "value", "EMPTY": "", "OTHER": "other"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$SET", "value"),
        ("${SET}", "value"),
        ("pre-${SET}-post", "pre-value-post"),
        ("$SET.txt", "value.txt"),
        ("${UNSET:-default}", "default"),
        ("${EMPTY:-default}", "default"),
        ("${SET:-default}", "value"),
        ("${UNSET-default}", "default"),
        ("${EMPTY-default}", ""),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${SET:?must be set}", "value"),
        ("${EMPTY?must be set}", ""),
        ("$$SET", "$SET"),
        ("$${SET}", "${SET}"),
        ("a $ alone", "a $ alone"),
        ("${UNSET:-${OTHER}}", "other"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("${UNSET:-$$literal}", "$literal"),
    ],
)
def test_each_form_gives_what_compose_gives(text: str, expected: str) -> None:
    assert interpolate(text, ENV, HERE) == expected


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("${UNSET:?give me UNSET}", "required variable UNSET is unset: give me UNSET"),
        ("${EMPTY:?not empty please}", "required variable EMPTY is empty: not empty please"),
        ("${UNSET?needed}", "required variable UNSET is unset: needed"),
        ("${UNSET:?}", "required variable UNSET is unset: is required"),
    ],
)
def test_a_required_variable_names_itself_and_the_message(text: str, said: str) -> None:
    with pytest.raises(ComposeError) as error:
        interpolate(text, ENV, HERE)
    assert str(error.value) == f"compose.yml:3:5: {said}"


@pytest.mark.parametrize("text", ["${}", "${SET", "${SET/a/b}", "${1abc}"])
def test_bad_braces_are_errors(text: str) -> None:
    with pytest.raises(ComposeError, match="invalid interpolation format"):
        interpolate(text, ENV, HERE)


def test_an_unset_variable_is_empty_and_warned(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text("services:\n  web:\n    image: nginx:${TAG}\n")
    stack = load_stack([tmp_path / "compose.yml"], env={})
    assert stack.services["web"].image == "nginx:"
    assert [(w.line, w.column) for w in stack.warnings] == [(3, 12)]
    assert "variable TAG is not set" in stack.warnings[0].message


def test_a_required_variable_in_a_file_is_reported_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "compose.yml"
    path.write_text("services:\n  web:\n    image: nginx\n    user: ${WHO:?say who runs it}\n")
    with pytest.raises(ComposeError) as error:
        load_stack([path], env={})
    assert error.value.line == 4
    assert error.value.column == 11
    assert "WHO" in str(error.value) and "say who runs it" in str(error.value)


def test_dotenv_beside_the_first_file_is_overlaid_by_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TAG=1.0\nREPLICAS=2\n# comment\n")
    (tmp_path / "compose.yml").write_text(
        "services:\n  web:\n    image: nginx:${TAG}\n    deploy:\n      replicas: ${REPLICAS}\n"
    )
    stack = load_stack([tmp_path / "compose.yml"], env={"TAG": "2.0"})
    assert stack.services["web"].image == "nginx:2.0"
    assert stack.services["web"].deploy["replicas"] == 2


def test_interpolation_leaves_keys_alone(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text(
        "services:\n  web:\n    image: nginx\n    labels:\n      $KEY: ${VALUE}\n"
    )
    stack = load_stack([tmp_path / "compose.yml"], env={"KEY": "k", "VALUE": "v"})
    assert stack.services["web"].config["labels"] == {"$KEY": "v"}


def test_dotenv_format(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_text(
        "# settings\n"
        "export A=1\n"
        "B='literal $A'\n"
        'C="line\\nbreak ${A}"\n'
        "D=plain # a comment\n"
        "E=\n"
        "F\n"
        "G=x=y\n"
    )
    values = parse_dotenv(path, {})
    assert values == {
        "A": "1",
        "B": "literal $A",
        "C": "line\nbreak 1",
        "D": "plain",
        "E": "",
        "F": None,
        "G": "x=y",
    }


def test_dotenv_unterminated_quote_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_text('A=1\nB="open\n')
    with pytest.raises(ComposeError) as error:
        parse_dotenv(path, {})
    assert error.value.line == 2

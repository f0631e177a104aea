"""A compose loader that cannot be knocked over: alias bombs, deep nesting, huge files.

What a user sees from `swarmlite stack config` (the CLI's one error handler, exit code 1,
file:line:column), and that both YAML parsers (libyaml's and PyYAML's pure one) build the
same nodes at the same positions. Time and memory are measured by
scripts/bench/compose_load.py, never asserted here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from swarmlite.cli.main import cli
from swarmlite.compose import load_stack
from swarmlite.compose.loader import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    SAFE_LOADER,
    Map,
    Node,
    Scalar,
    Seq,
    parse,
)
from swarmlite.errors import ComposeError

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared"
REPO = Path(__file__).resolve().parents[3]
LOADERS = [pytest.param(yaml.SafeLoader, id="pure")]
if getattr(yaml, "CSafeLoader", None) is not None:
    LOADERS.insert(0, pytest.param(yaml.CSafeLoader, id="libyaml"))

HEAD = "services:\n  web: {image: nginx}\n"


def alias_bomb(levels: int = 9, fan_out: int = 9) -> str:
    lines = [f"x-a0: &a0 [{', '.join(['lol'] * fan_out)}]"]
    for level in range(1, levels + 1):
        lines.append(f"x-a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * fan_out) + "]")
    return HEAD + "\n".join(lines) + "\n"


def stack_config(path: Path, *, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["stack", "config", "-c", str(path)], input=input)


def test_stack_config_refuses_an_alias_bomb(tmp_path: Path) -> None:
    path = tmp_path / "compose.yml"
    path.write_text(alias_bomb())

    result = stack_config(path)

    assert result.exit_code == 1
    # The budget is passed at the first alias of x-a5 (9^5 values): line 8, column 12.
    assert result.stderr.startswith(f"error: {path}:8:12: the aliases of this file expand ")
    assert f"more than {MAX_ALIAS_NODES:,} values (at *a4): refused as a YAML alias bomb" in (
        result.stderr
    )
    assert "internal error" not in result.stderr


@pytest.mark.parametrize("loader", LOADERS)
def test_aliases_within_the_budget_expand_and_each_is_its_own_copy(loader: Any) -> None:
    text = (
        HEAD + "x-a: &a {v: &v '$$HOME'}\nx-b: *a\nx-c: [*v, *v]\n" + alias_bomb(4, 9)[len(HEAD) :]
    )

    root = parse(text, "compose.yml", loader=loader)

    a, b = root.items["x-a"], root.items["x-b"]
    assert isinstance(a, Map) and isinstance(b, Map)
    assert a is not b and a.items["v"] is not b.items["v"]
    assert b.mark.line == 3  # an alias keeps the position of what it names
    level4 = root.items["x-a4"]
    assert isinstance(level4, Seq) and len(level4.items) == 9


def test_an_interpolated_alias_is_interpolated_once(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text(
        "x-env: &env {GREETING: 'pay $$5'}\n"
        "services:\n  a: {image: x, environment: *env}\n  b: {image: x, environment: *env}\n"
    )
    stack = load_stack([tmp_path / "compose.yml"], env={"5": "five"})
    assert [s.config["environment"] for s in stack.services.values()] == [
        {"GREETING": "pay $5"},
        {"GREETING": "pay $5"},
    ]


@pytest.mark.parametrize("style", ["flow", "block"])
def test_stack_config_refuses_10000_nested_levels(tmp_path: Path, style: str) -> None:
    levels = 10_000
    if style == "flow":
        deep = "x-deep: " + "[" * levels + "]" * levels + "\n"
    else:
        deep = "x-deep:\n  " + "- " * levels + "x\n"
    path = tmp_path / "compose.yml"
    path.write_text(HEAD + deep)

    result = stack_config(path)

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {path}:{3 if style == 'flow' else 4}:")
    assert f"values nested more than {MAX_DEPTH} levels deep" in result.stderr
    assert "RecursionError" not in result.stderr and "internal error" not in result.stderr


@pytest.mark.parametrize("loader", LOADERS)
def test_500_nested_lists_are_a_compose_error_not_a_crash(loader: Any) -> None:
    with pytest.raises(ComposeError, match=f"nested more than {MAX_DEPTH} levels") as error:
        parse(HEAD + "x: " + "[" * 500 + "]" * 500 + "\n", "compose.yml", loader=loader)
    assert (error.value.line, error.value.column) == (3, 4 + MAX_DEPTH - 1)


def test_an_alias_that_nests_past_the_limit_is_refused() -> None:
    half = MAX_DEPTH // 2 + 10
    text = (
        HEAD
        + "x-a: &a "
        + "[" * half
        + "]" * half
        + "\nx-b: "
        + "[" * half
        + "*a"
        + ("]" * half)
        + "\n"
    )
    with pytest.raises(ComposeError, match=r"the alias \*a nests values more than") as error:
        parse(text, "compose.yml")
    assert error.value.line == 4


def test_nesting_up_to_the_limit_loads_and_prints(tmp_path: Path) -> None:
    depth = MAX_DEPTH - 2  # the top mapping and x-deep's own mapping are levels too
    path = tmp_path / "compose.yml"
    path.write_text(HEAD + "x-deep: " + "[" * depth + "1" + "]" * depth + "\n")

    result = stack_config(path)

    assert result.exit_code == 0, result.stderr
    again = tmp_path / "again.yml"
    again.write_text(result.stdout)
    assert stack_config(again).stdout == result.stdout


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "compose.yml"
    with path.open("w") as file:
        file.write(HEAD + "x-big: ")
        file.truncate(MAX_FILE_BYTES + 1)  # a sparse file: the loader must not read it all

    result = stack_config(path)

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {path}: the file is larger than 10 MiB")


def test_standard_input_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    text = HEAD + "x-big: " + "a" * MAX_FILE_BYTES + "\n"
    result = stack_config(Path("-"), input=text)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: -: the file is larger than 10 MiB")


def test_a_5_mb_value_loads_and_prints_whole(tmp_path: Path) -> None:
    value = "a" * 5_000_000
    path = tmp_path / "compose.yml"
    path.write_text(f"services:\n  web:\n    image: nginx\n    environment:\n      BIG: {value}\n")

    result = stack_config(path)

    assert result.exit_code == 0, result.stderr
    assert yaml.load(result.stdout, Loader=SAFE_LOADER)["services"]["web"]["environment"] == {
        "BIG": value
    }


def test_libyaml_is_used_when_pyyaml_has_it() -> None:
    expected = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
    assert SAFE_LOADER is expected


REFUSED = {
    "recursive alias": (
        "x-a: &a [1, *a]\n",
        3,
        13,
        r"the alias \*a refers to a node that contains",
    ),
    "undefined alias": ("x-a: *nope\n", 3, 6, r"the alias \*nope names no anchor &nope"),
    "two documents": ("---\nx: 1\n", 3, 1, "holds one YAML document"),
    "control character": ("x-a: 'a\x01'\n", 3, 8, r"invalid YAML: .*character #x0001"),
    "mapping as a key": ("? {a: 1}\n: b\n", 3, 3, "a mapping key must be a scalar"),
    "merge of a scalar": ("x-a:\n  <<: 3\n", 4, 7, r"a merge key \(<<\) takes a mapping"),
}


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(("text", "line", "column", "message"), REFUSED.values(), ids=REFUSED)
def test_every_refusal_is_a_compose_error_with_its_position(
    loader: Any, text: str, line: int, column: int, message: str
) -> None:
    with pytest.raises(ComposeError, match=message) as error:
        parse(HEAD + text, "compose.yml", loader=loader)
    assert (error.value.path, error.value.line, error.value.column) == (
        "compose.yml",
        line,
        column,
    )


def _shape(node: Node) -> Any:
    """A node with every position, tag and quoting, to compare two parsers' trees."""
    where = (node.mark.line, node.mark.column, node.tag)
    if isinstance(node, Scalar):
        return (where, node.value, node.quoted)
    if isinstance(node, Seq):
        return (where, [_shape(item) for item in node.items])
    assert isinstance(node, Map)
    return (
        where,
        {key: (_shape(value), node.key_marks[key].line) for key, value in node.items.items()},
    )


def _compose_files() -> list[Path]:
    roots = [SHARED / "compose-corpus", REPO / "compose-samples"]
    return sorted(p for root in roots for p in root.rglob("*.y*ml") if p.is_file())


@pytest.mark.skipif(
    getattr(yaml, "CSafeLoader", None) is None, reason="PyYAML is built without libyaml"
)
def test_libyaml_and_the_pure_parser_build_the_same_nodes() -> None:
    files = _compose_files()
    compared = 0
    for path in files:
        text = path.read_text()
        outcomes = []
        for loader in (yaml.CSafeLoader, yaml.SafeLoader):
            try:
                outcomes.append(_shape(parse(text, path.name, loader=loader)))
            except ComposeError as exc:
                outcomes.append(("refused", exc.line))
        assert outcomes[0] == outcomes[1], path
        compared += outcomes[0][0] != "refused"
    assert compared >= 40  # the corpus and the samples are there, and most parse

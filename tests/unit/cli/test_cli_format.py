"""`--format` as docker reads it: tables, json, Go templates, on rows and on objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from swarmlite.cli import format
from swarmlite.cli.gotemplate import Template
from swarmlite.errors import InvalidArgument, UsageError

NODE_TABLE = (
    "table {{.ID}} {{if .Self}}*{{else}} {{ end }}\t{{.Hostname}}\t{{.Status}}\t{{.EngineVersion}}"
)


def rows() -> list[dict[str, Any]]:
    labels = {"zone": "a"}
    return [
        {
            "ID": "n1",
            "Self": True,
            "Hostname": "manager-1",
            "Status": "Ready",
            "EngineVersion": "0.1.0",
            "CreatedAt": "2 minutes ago",
            "Label": lambda key: labels.get(key, ""),
        },
        {
            "ID": "n2",
            "Self": False,
            "Hostname": "w",
            "Status": "Down",
            "EngineVersion": "",
            "CreatedAt": "1 hour ago",
            "Label": lambda key: "",
        },
    ]


def execute(source: str, data: Any) -> str:
    return Template(source).execute(data)


# --------------------------------------------------------------------------- rows


def test_the_default_table_has_dockers_header_and_aligned_columns() -> None:
    text = format.render_rows(None, rows(), NODE_TABLE, headers={"Self": ""})

    assert text.splitlines() == [
        "ID     HOSTNAME    STATUS   ENGINE VERSION",
        "n1 *   manager-1   Ready    0.1.0",
        "n2     w           Down",
    ]


def test_table_template_heads_each_column_with_its_field_name() -> None:
    fmt = 'table {{.ID}}\\t{{.CreatedAt}}\\t{{.Hostname | upper}}\\t{{.Label "com.x.zone"}}'

    text = format.render_rows(fmt, rows(), NODE_TABLE)

    assert text.splitlines() == [
        "ID   CREATED AT      HOSTNAME    zone",
        "n1   2 minutes ago   MANAGER-1",
        "n2   1 hour ago      W",
    ]


def test_table_header_uses_the_listings_own_names() -> None:
    text = format.render_rows("table {{.ID}}", rows(), NODE_TABLE, headers={"ID": "NODE ID"})
    assert text.splitlines() == ["NODE ID", "n1", "n2"]


def test_a_bare_template_prints_one_line_per_row_without_header() -> None:
    text = format.render_rows('{{.ID}}: {{.Label "zone"}}\\t!', rows(), NODE_TABLE)
    assert text == "n1: a\t!\nn2: \t!\n"


def test_json_is_one_compact_object_per_row_with_sorted_keys_and_no_methods() -> None:
    text = format.render_rows("json", rows(), NODE_TABLE)

    first, second = text.splitlines()
    assert first == (
        '{"CreatedAt":"2 minutes ago","EngineVersion":"0.1.0","Hostname":"manager-1",'
        '"ID":"n1","Self":true,"Status":"Ready"}'
    )
    assert json.loads(second)["ID"] == "n2"
    assert format.render_rows("{{json .}}", rows(), NODE_TABLE) == text


def test_quiet_prints_ids_unless_a_format_is_given() -> None:
    assert format.render_rows(None, rows(), NODE_TABLE, quiet=True) == "n1\nn2\n"
    assert format.render_rows("table", rows(), NODE_TABLE, quiet=True) == "n1\nn2\n"
    text = format.render_rows("{{.Hostname}}", rows(), NODE_TABLE, quiet=True)
    assert text == "manager-1\nw\n"


def test_no_rows_prints_only_the_header_or_nothing() -> None:
    assert format.render_rows(None, [], NODE_TABLE, headers={"Self": ""}).splitlines() == [
        "ID     HOSTNAME   STATUS   ENGINE VERSION"
    ]
    assert format.render_rows("{{.ID}}", [], NODE_TABLE) == ""
    assert format.render_rows("json", [], NODE_TABLE) == ""


def test_a_missing_field_is_an_invalid_argument_naming_the_template_and_the_fields() -> None:
    with pytest.raises(InvalidArgument) as caught:
        format.render_rows("{{.Foo}}", rows(), NODE_TABLE)

    assert caught.value.message == (
        "--format '{{.Foo}}': template: :1:2: executing \"\" at <.Foo>: "
        "can't evaluate field Foo in type row"
    )
    assert caught.value.hint is not None
    assert "CreatedAt, EngineVersion, Hostname, ID, Self, Status" in caught.value.hint


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("{{.ID", "template: :1: unclosed action"),
        ("{{nope .ID}}", 'template: :1: function "nope" not defined'),
        ("{{if .ID}}x", "template: :1: unexpected EOF"),
        ("x{{end}}", "template: :1: unexpected {{end}}"),
        ("{{}}", "template: :1: missing value for command"),
        ("{{$x}}", 'template: :1: undefined variable "$x"'),
        ('{{"abc}}', "template: :1: unterminated quoted string"),
        ("{{(.ID}}", "template: :1: unclosed left paren"),
    ],
)
def test_a_template_that_does_not_parse_is_a_usage_error(fmt: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        format.check(fmt)
    assert caught.value.message == f"--format {fmt!r}: {message}"


def test_table_and_json_always_parse() -> None:
    for fmt in (None, "table", "json", "table {{.ID}}"):
        format.check(fmt)


# --------------------------------------------------------------------------- objects


OBJECT = {
    "ID": "abc",
    "Version": {"Index": 12},
    "Spec": {"Name": "web", "Labels": {"k": "v", "a": "b"}},
    "Ports": [80, 443],
    "Nothing": None,
}


def test_inspect_without_format_is_an_indented_json_array() -> None:
    text = format.render_inspect(None, [OBJECT])
    assert text.startswith('[\n    {\n        "ID": "abc",')
    assert json.loads(text) == [OBJECT]
    assert format.render_inspect(None, []) == "[]\n"


def test_inspect_json_is_compact() -> None:
    text = format.render_inspect("json", [OBJECT, OBJECT])
    assert text.count("\n") == 1
    assert json.loads(text) == [OBJECT, OBJECT]


def test_inspect_template_runs_once_per_object() -> None:
    text = format.render_inspect("{{.Spec.Name}} {{json .Spec.Labels}}", [OBJECT, OBJECT])
    assert text == 'web {"k":"v","a":"b"}\n' * 2


def test_inspect_of_a_missing_key_says_so_like_docker() -> None:
    with pytest.raises(InvalidArgument) as caught:
        format.render_inspect("{{.Spec.Nope}}", [OBJECT])
    assert caught.value.message.endswith(
        'template: :1:2: executing "" at <.Spec.Nope>: map has no entry for key "Nope"'
    )


def test_render_object_json_template_or_pretty() -> None:
    assert format.render_object("json", {"A": 1}) == '{"A":1}\n'
    assert format.render_object("{{.A}}", {"A": 1}) == "1\n"
    assert format.render_object(None, {"A": 1}, lambda: "A: 1") == "A: 1\n"


# --------------------------------------------------------------------------- the language


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{.ID}}", "abc"),
        ("{{ .Version.Index }}", "12"),
        ("{{.Ports}} {{.Nothing}} {{.Spec.Labels}}", "[80 443] <no value> map[a:b k:v]"),
        ('{{index .Spec.Labels "k"}}[{{index .Spec.Labels "none"}}]', "v[]"),
        ("{{index .Ports 1}}", "443"),
        ("{{range $k, $v := .Spec.Labels}}{{$k}}={{$v}};{{end}}", "a=b;k=v;"),
        ("{{range .Ports}}<{{.}}>{{end}}", "<80><443>"),
        ("{{range $p := .Ports}}{{$p}},{{end}}", "80,443,"),
        ("{{range .Nothing}}x{{else}}empty{{end}}", "empty"),
        ("{{with .Spec}}{{.Name}}{{else}}none{{end}}", "web"),
        ("{{with .Nothing}}x{{else}}none{{end}}", "none"),
        ('{{if eq .ID "x" "abc"}}yes{{else}}no{{end}}', "yes"),
        ("{{if .Nothing}}a{{else if .ID}}b{{else}}c{{end}}", "b"),
        ("{{if and .ID (not .Nothing)}}ok{{end}}", "ok"),
        ("{{if gt .Version.Index 10}}big{{end}}", "big"),
        ("{{or .Nothing .ID}}", "abc"),
        ("{{$x := .Spec.Name}}{{$x}}-{{$.ID}}", "web-abc"),
        ("{{.ID | upper}} {{upper .ID | lower}}", "ABC abc"),
        ('{{title "hello world-x"}}', "Hello World-X"),
        ('{{join (split "a,b,c" ",") "+"}} {{len .Ports}}', "a+b+c 2"),
        ('{{join .Spec.Labels ","}}', "b,v"),
        (
            '{{printf "%s:%d|%5s|%-4s|%q" .ID .Version.Index .ID .ID .ID}}',
            'abc:12|  abc|abc |"abc"',
        ),
        ('{{.ID | printf "<%s>"}}', "<abc>"),
        ("{{print .ID 1 2}} {{println .ID}}", "abc1 2 abc\n"),
        ('{{pad .ID 2 1}}|{{truncate .Spec.Name 2}}|{{pad "" 2 2}}', "  abc |we|"),
        ("{{json .Spec}}", '{"Name":"web","Labels":{"k":"v","a":"b"}}'),
        ('{{json "<a&b>"}}', '"<a&b>"'),
        ("a  {{- .ID -}}  \n b", "aabcb"),
        ("{{/* a comment */}}x{{- /* trimmed */ -}} y", "xy"),
        ('{{"}}"}}', "}}"),
        ("{{`raw\\n`}}", "raw\\n"),
        ('{{"tab\\there"}}', "tab\there"),
        ('{{(index .Spec.Labels "k") | upper}}{{(.Spec).Name}}', "Vweb"),
        ("{{true}} {{nil}} {{1.5}} {{0x10}}", "true <no value> 1.5 16"),
    ],
)
def test_the_template_language(source: str, expected: str) -> None:
    assert execute(source, OBJECT) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{.Nothing.Name}}", "nil pointer evaluating interface {}.Name"),
        ("{{.ID.Name}}", "can't evaluate field Name in type string"),
        ("{{index .Ports 5}}", "error calling index: index out of range: 5"),
        ("{{range .ID}}{{end}}", "range can't iterate over abc"),
        ("{{.ID 1}}", "can't give argument to non-function .ID"),
        ("{{len .Version.Index}}", "error calling len: len of type int"),
        ("{{eq .ID 1}}", "error calling eq: incompatible types for comparison"),
        ("{{upper 1 2}}", "wrong number of args for upper"),
    ],
)
def test_execution_errors_carry_gos_words(source: str, message: str) -> None:
    with pytest.raises(ValueError, match="executing") as caught:
        execute(source, OBJECT)
    assert str(caught.value).endswith(message)


def test_header_functions_leave_column_names_as_they_are() -> None:
    fmt = "table {{.Hostname | lower}}\\t{{json .Status}}\\t{{pad .ID 1 1}}"
    text = format.render_rows(fmt, rows(), NODE_TABLE)
    assert text.splitlines()[0] == "HOSTNAME    STATUS     ID"


def test_align_is_gos_tabwriter_with_three_blanks() -> None:
    assert format.align("a\tbb\tc\nlong\tb\n\nx\ty\n") == "a      bb   c\nlong   b\n\nx   y\n"

"""The Go text/template interpreter: output must match Go byte for byte."""

from __future__ import annotations

from typing import Any

import pytest
from knevents.sensors import gotemplate

INPUT = gotemplate.go_value(
    b'{"body":{"name":"joe smith","n":1000000,"f":1.5,"i":3,"list":[1,"a",null],'
    b'"m":{"b":1,"a":"x<y"},"sha":"abcdef123456","nul":null,"empty":"","flag":true},'
    b'"header":{"X-Id":["42"]}}'
)


def render(source: str, dot: Any = None) -> str:
    return gotemplate.compile_template(source).render({"Input": INPUT} if dot is None else dot)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ .Input.body.name }}", "joe smith"),
        ("{{.Input.body.name}}", "joe smith"),
        ("x={{ .Input.body.i }}", "x=3"),
        ("{{ .Input.body.f }}", "1.5"),
        ("{{ .Input.body.n }}", "1e+06"),  # float64 from JSON prints as Go's %v
        ("{{ .Input.body.flag }}", "true"),
        ("{{ .Input.body.m }}", "map[a:x<y b:1]"),
        ("{{ .Input.body.list }}", "[1 a <nil>]"),
        ("{{ .Input.body.missing }}", "<no value>"),
        ("{{ .Input.body.nul }}", "<no value>"),
        ("{{ .Input.body.missing.deeper }}", "<no value>"),
        ("{{ .Input.body.name | upper }}", "JOE SMITH"),
        ("{{ .Input.body.name | title }}", "Joe Smith"),
        ('{{ "o\'neil-x_y été" | title }}', "O'Neil-X_y Été"),
        ("{{ .Input.body.name | nospace | lower }}", "joesmith"),
        ("{{ .Input.body.sha | substr 0 7 }}", "abcdef1"),
        ('{{ .Input.body.name | replace " " "-" }}', "joe-smith"),
        ('{{ trimPrefix "joe " .Input.body.name }}', "smith"),
        ("{{ .Input.body.name | quote }}", '"joe smith"'),
        ("{{ .Input.body.name | squote }}", "'joe smith'"),
        ("{{ .Input.body.name | b64enc }}", "am9lIHNtaXRo"),
        ('{{ "am9lIHNtaXRo" | b64dec }}', "joe smith"),
        ("{{ toJson .Input.body.m }}", '{"a":"x\\u003cy","b":1}'),
        ("{{ toRawJson .Input.body.m }}", '{"a":"x<y","b":1}'),
        ('{{ (fromJson "{\\"k\\":2}").k }}', "2"),
        ('{{ .Input.body.empty | default "d" }}', "d"),
        ('{{ .Input.body.missing | default "d" }}', "d"),
        ('{{ .Input.body.name | default "d" }}', "joe smith"),
        ("{{ empty .Input.body.empty }}", "true"),
        ("{{ .Input.body.f | int }}", "1"),
        ('{{ "12" | int64 }}', "12"),
        ("{{ .Input.body.i | toString }}", "3"),
        ('{{ contains "smith" .Input.body.name }}', "true"),
        ('{{ hasPrefix "joe" .Input.body.name }}', "true"),
        ('{{ hasSuffix "x" .Input.body.name }}', "false"),
        ('{{ split " " .Input.body.name }}', "map[_0:joe _1:smith]"),
        ('{{ (split " " .Input.body.name)._1 }}', "smith"),
        ('{{ join "," (splitList " " .Input.body.name) }}', "joe,smith"),
        ('{{ list 1 "a" }}', "[1 a]"),
        ('{{ get (dict "k" "v") "k" }}', "v"),
        ('{{ index .Input.header "X-Id" 0 }}', "42"),
        ("{{ index .Input.body.list 1 }}", "a"),
        ("{{ len .Input.body.list }}", "3"),
        ('{{ printf "%s-%v-%d" .Input.body.name .Input.body.f 7 }}', "joe smith-1.5-7"),
        ('{{ printf "%.2f" .Input.body.f }}', "1.50"),
        ('{{ printf "%q" .Input.body.name }}', '"joe smith"'),
        ('{{ print 1 2 "a" }}', "1 2a"),
        ('{{ if eq .Input.body.name "joe smith" }}yes{{ else }}no{{ end }}', "yes"),
        ('{{ if ne .Input.body.name "joe smith" }}yes{{ else }}no{{ end }}', "no"),
        ("{{ if gt .Input.body.f 1.0 }}big{{ end }}", "big"),
        ("{{ if lt .Input.body.i 2.0 }}a{{ else if lt .Input.body.i 4.0 }}b{{ else }}c{{ end }}", "b"),
        ("{{ if and .Input.body.flag (not .Input.body.empty) }}ok{{ end }}", "ok"),
        ('{{ or .Input.body.empty "fallback" }}', "fallback"),
        ("{{ and .Input.body.flag .Input.body.i }}", "3"),
        ("{{ with .Input.body.m }}{{ .a }}{{ end }}", "x<y"),
        ("{{ with .Input.body.missing }}x{{ else }}none{{ end }}", "none"),
        ("{{ range .Input.body.list }}[{{ . }}]{{ end }}", "[1][a][<no value>]"),
        ("{{ range $i, $v := .Input.body.list }}{{ $i }}={{ $v }};{{ end }}", "0=1;1=a;2=<no value>;"),
        ("{{ range $k, $v := .Input.body.m }}{{ $k }}:{{ $v }} {{ end }}", "a:x<y b:1 "),
        ("{{ range .Input.body.missing }}x{{ else }}empty{{ end }}", "empty"),
        ("{{ range $i, $v := .Input.body.list }}{{ if eq $i 1 }}{{ break }}{{ end }}{{ $v }}{{ end }}", "1"),
        ("{{ $x := .Input.body.name }}{{ $x | upper }}", "JOE SMITH"),
        ("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", "2"),
        ("{{ range .Input.body.list }}{{ $.Input.body.i }}{{ end }}", "333"),
        ("a  {{- .Input.body.i -}}  b", "a3b"),
        ("a {{/* a comment */}}b", "a b"),
        ('{{ "}}" }}', "}}"),  # a closing delimiter inside a string does not end the action
        ('{{ printf "{{%s}}" .Input.body.name }}', "{{joe smith}}"),
        ('{{ printf "%s" .Input.body.i }}', "%!s(float64=3)"),  # as Go prints a wrong verb
        ("a {{- /* c }} */ -}} b", "ab"),
        ("{{-3}}", "-3"),  # no space after the dash: a negative number, not a trim marker
        ("{{ `raw \\n` }}", "raw \\n"),
        ("{{ 0.000001 }} {{ 123456.0 }} {{ 1234567.0 }}", "1e-06 123456 1.234567e+06"),
        ("{{ toJson (list 1e21 1e20 0.0000001) }}", "[1e+21,100000000000000000000,1e-7]"),
        ("{{ add 1 2 }} {{ sub 5 2 }} {{ mul 2 3 }} {{ div 7 2 }} {{ mod 7 2 }}", "3 3 6 3 1"),
        ('{{ trunc 3 "abcdef" }}', "abc"),
        ('{{ regexReplaceAll "a(b)" "xaby" "${1}" }}', "xby"),
        ('{{ ternary "y" "n" true }}', "y"),
        ('{{ "x" | repeat 3 }}', "xxx"),
        ('{{ "HelloWorld foo" | snakecase }}', "hello_world_foo"),
        ('{{ "hello_world" | camelcase }}', "HelloWorld"),
        ('{{ "HelloWorld" | kebabcase }}', "hello-world"),
        ("{{ typeOf .Input.body.f }} {{ typeOf .Input.body.m }}", "float64 map[string]interface {}"),
        ("{{ kindOf .Input.body.list }} {{ kindOf .Input.body.missing }}", "slice invalid"),
    ],
)
def test_renders_like_go(source: str, expected: str) -> None:
    assert render(source) == expected


def test_string_input_as_in_data_filters() -> None:
    assert render("{{ .Input | upper }}", {"Input": "abc"}) == "ABC"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ .Input.body.nul.x }}", "nil pointer evaluating interface {}.x"),
        ("{{ .Input.body.name.x }}", "can't evaluate field x in type string"),
        ("{{ eq .Input.body.i 3 }}", "incompatible types for comparison"),  # float64 vs int, as in Go
        ("{{ upper .Input.body.missing }}", "invalid value; expected string"),
        ("{{ index .Input.body.list 5 }}", "index out of range"),
        ("{{ len .Input.body.i }}", "len of type float64"),
        ("{{ range .Input.body.name }}{{ end }}", "range can't iterate over joe smith"),
        ("{{ $nope }}", "undefined variable"),
        ("{{ .Input.body.name 1 }}", "can't give argument to non-function"),
        ("{{ div 1 0 }}", "integer divide by zero"),
    ],
)
def test_execution_errors(source: str, message: str) -> None:
    with pytest.raises(gotemplate.TemplateError, match=message):
        render(source)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ nosuch 1 }}", 'function "nosuch" not defined'),
        ("{{ if .x }}", "unexpected EOF"),
        ("{{ end }}", "unexpected"),
        ("{{ .x", "unclosed action"),
        ('{{ "open }}', "unterminated quoted string"),
        ("{{/* open }}", "unclosed comment"),
        ("{{ }}", "missing value"),
        ('{{ (upper "a" }}', "unclosed left paren"),
        ('{{ define "x" }}{{ end }}', "not supported"),
        ("{{ else }}", "unexpected"),
    ],
)
def test_parse_errors(source: str, message: str) -> None:
    with pytest.raises(gotemplate.TemplateError, match=message):
        gotemplate.compile_template(source)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "true"),
        (1.0, "1"),
        (2.5, "2.5"),
        ("a&b", '"a\\u0026b"'),
        ({"b": 1, "a": [1, None]}, '{"a":[1,null],"b":1}'),
    ],
)
def test_go_json(value: Any, text: str) -> None:
    assert gotemplate.go_json(value) == text

"""gjson reads adapted to Go's Result, and our sjson writes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from knevents.sensors import paths

DOC = json.dumps(
    {
        "a": {"b": [1, 2.5, {"c": "x"}], "t": True, "f": False, "n": None},
        "x.y": 5,
        "num": 1.50,
        "big": 1000000,
        "exp": 1e3,
        "neg": -12,
        "tiny": 1.5e-7,
        "friends": [{"first": "Dale", "age": 44}, {"first": "Roger", "age": 68}],
    }
).encode()
# json.dumps loses "1.50" and "1e3"; splice the exact texts Go would see.
DOC = DOC.replace(b'"num": 1.5', b'"num": 1.50').replace(b'"exp": 1000.0', b'"exp": 1e3')


@pytest.mark.parametrize(
    ("path", "kind", "text"),
    [
        ("a.b.2.c", "String", "x"),
        ("num", "Number", "1.5"),  # Go's String() reformats non-integer numbers
        ("exp", "Number", "1000"),
        ("big", "Number", "1000000"),
        ("neg", "Number", "-12"),
        ("tiny", "Number", "0.00000015"),
        ("a.t", "True", "true"),
        ("a.f", "False", "false"),
        ("a.n", "Null", ""),
        ("a.b", "JSON", '[1, 2.5, {"c": "x"}]'),
        ("a.b.#", "Number", "3"),
        ("x\\.y", "Number", "5"),
        ('friends.#(first=="Dale").age', "Number", "44"),
        ("friends.#(age>40)#.first", "JSON", '["Dale","Roger"]'),
        ("friends.#.first", "JSON", '["Dale","Roger"]'),
        ("fr?ends.1.first", "String", "Roger"),
        ("a.b.@reverse.0.c", "String", "x"),
    ],
)
def test_get_matches_go_gjson_result(path: str, kind: str, text: str) -> None:
    found = paths.get(DOC, path)
    assert found is not None
    assert (found.type, found.text) == (kind, text)


@pytest.mark.parametrize("path", ["missing", "a.b.9", "a.t.x", "num.x"])
def test_get_missing_is_none(path: str) -> None:
    assert paths.get(DOC, path) is None


def test_value_is_go_interface() -> None:
    found = paths.get(DOC, "a.b")
    assert found is not None
    assert found.value() == [1.0, 2.5, {"c": "x"}]
    assert isinstance(found.value()[0], float)
    num = paths.get(DOC, "neg")
    assert num is not None and num.value() == -12.0
    null = paths.get(DOC, "a.n")
    assert null is not None and null.raw == "null" and null.value() is None


@pytest.mark.parametrize(
    ("doc", "path", "value", "raw", "expected"),
    [
        (None, "a", "b", False, '{"a":"b"}'),
        (b"", "a.b.c", "v", False, '{"a":{"b":{"c":"v"}}}'),
        (b'{"a":1}', "b", "x", False, '{"a":1,"b":"x"}'),  # new keys are appended
        (b'{"a":1.50,"b":2}', "a", "3", True, '{"a":3,"b":2}'),
        (b'{"n":1.50}', "m", "x", False, '{"n":1.50,"m":"x"}'),  # numbers keep their text
        (None, "list.0", "x", False, '{"list":["x"]}'),
        (None, "list.2", "x", False, '{"list":[null,null,"x"]}'),
        (b'{"l":[1,2]}', "l.-1", "3", True, '{"l":[1,2,3]}'),
        (b'{"l":[1,2]}', "l.0", "z", False, '{"l":["z",2]}'),
        (b'{"o":{"1":"a"}}', "o.1", "b", False, '{"o":{"1":"b"}}'),  # numeric key on an object
        (None, "a\\.b", "v", False, '{"a.b":"v"}'),
        (None, "a", '{"k":[1,true]}', True, '{"a":{"k":[1,true]}}'),
        (None, "a", '{"k":1}', False, '{"a":"{\\"k\\":1}"}'),  # not raw: a JSON string
        (b'{"s":"text"}', "s.x", "v", False, '{"s":{"x":"v"}}'),  # a scalar in the way is replaced
        (None, "u", "a<>&", False, '{"u":"a<>&"}'),  # plain ASCII is written verbatim, as sjson does
        (None, "u", "é<>", False, '{"u":"é\\u003c\\u003e"}'),  # otherwise Go's json.Marshal escaping
        (None, "u", 'q"\n', False, '{"u":"q\\"\\n"}'),
    ],
)
def test_set_path_like_sjson(doc: bytes | None, path: str, value: str, raw: bool, expected: str) -> None:
    assert paths.set_path(doc, path, value, raw=raw).decode() == expected


@pytest.mark.parametrize(
    ("doc", "path", "value", "raw", "message"),
    [
        (None, "", "v", False, "empty"),
        (None, "a.*", "v", False, "wildcards"),
        (None, "a", "{not json", True, "not valid JSON"),
        (b"{broken", "a", "v", False, "not valid JSON"),
    ],
)
def test_set_path_errors(doc: bytes | None, path: str, value: str, raw: bool, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        paths.set_path(doc, path, value, raw=raw)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.5, "1.5"),
        (1000000.0, "1000000"),
        (1e21, "1000000000000000000000"),
        (1.5e-7, "0.00000015"),
        (-2.0, "-2"),
    ],
)
def test_go_float_string(value: float, text: str) -> None:
    assert paths.go_float_string(value) == text


_KEY = st.text(alphabet="abcxyz_-", min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(
    keys=st.lists(_KEY, min_size=1, max_size=4),
    value=st.text(max_size=20),
    start=st.dictionaries(_KEY, st.integers() | st.text(max_size=5), max_size=3),
)
def test_set_then_get_round_trips(keys: list[str], value: str, start: dict[str, object]) -> None:
    path = ".".join(keys)
    out = paths.set_path(json.dumps(start).encode(), path, value)
    found = paths.get(out, path)
    assert found is not None and found.type == "String" and found.text == value
    # keys not on the path are untouched
    decoded = json.loads(out)
    for key, item in start.items():
        if key != keys[0]:
            assert decoded[key] == item


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b'{"a":[1,2,3]}', None),
        (b"[" * 400 + b"]" * 400, None),
        (b"[[1]," * 3000 + b"2" + b"]" * 3000, "event data nests too deeply"),
        (b"[" * 200_000 + b"]" * 200_000, "event data nests too deeply"),
        (b"[" + b"{}," * 3000 + b"}", "event data not valid JSON"),  # many brackets, shallow, broken
        (b'"' + b"[" * 5000 + b'"', None),  # brackets inside a string do not nest
    ],
)
def test_unsafe_json(data: bytes, problem: str | None) -> None:
    assert paths.unsafe_json(data) == problem

"""The KEY=VALUE parser shared by `-p`, `%meshimg_config` and the panel (core.kv)."""

from __future__ import annotations

from typing import Any

import pytest

from mesh_magic.core.errors import InvalidOptionError
from mesh_magic.core.kv import parse_pair, parse_pairs, parse_value, short, split_pair, unquote

# -- parse_value ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("42", 42),
        ("-3", -3),
        ("7.5", 7.5),
        ("true", True),
        ("false", False),
        ("null", None),
        ("[1, 2]", [1, 2]),
        ('{"a": 1}', {"a": 1}),
        ('"quoted json"', "quoted json"),
        (" 7 ", 7),
    ],
)
def test_parse_value_reads_json(raw: str, expected: Any) -> None:
    value = parse_value(raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("abc", "abc"),
        ("my dir", "my dir"),
        ("'my dir'", "my dir"),
        ("  'padded'  ", "padded"),
        ("it's", "it's"),
        ('"', '"'),
        ("''", ""),
        ("[1, 2", "[1, 2"),
        ("{not json}", "{not json}"),
        ("True", "True"),
    ],
)
def test_parse_value_falls_back_to_the_text(raw: str, expected: str) -> None:
    assert parse_value(raw) == expected


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity"])
def test_parse_value_keeps_non_finite_constants_as_text(raw: str) -> None:
    assert parse_value(raw) == raw


def test_parse_value_refuses_a_float_that_overflows() -> None:
    with pytest.raises(InvalidOptionError, match=r"-p seed: '1e999' is out of range"):
        parse_value("1e999", what="-p seed")


def test_parse_value_survives_deep_nesting() -> None:
    deep = "[" * 100_000
    assert parse_value(deep) == deep


# -- unquote and short ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("'a b'", "a b"),
        ('"a b"', "a b"),
        ("'a b\"", "'a b\""),
        ("'", "'"),
        ("plain", "plain"),
        ("`x`", "`x`"),
        ('""', ""),
    ],
)
def test_unquote_drops_only_a_matching_pair(token: str, expected: str) -> None:
    assert unquote(token) == expected


def test_short_keeps_short_values_and_cuts_long_ones() -> None:
    assert short("abc") == "'abc'"
    assert short(42) == "42"
    cut = short("x" * 500)
    assert len(cut) == 60
    assert cut.startswith("'xxx") and cut.endswith("...'")
    assert len(short("y" * 500, limit=20)) == 20


# -- parse_pair / split_pair ---------------------------------------------------------------


def test_parse_pair_strips_the_key_and_parses_the_value() -> None:
    assert parse_pair(" seed = 42") == ("seed", 42)
    assert parse_pair("style=vivid") == ("style", "vivid")
    assert parse_pair("extra.deep-name_1=[1]") == ("extra.deep-name_1", [1])
    assert parse_pair("prompt_suffix='a=b'") == ("prompt_suffix", "a=b")
    assert parse_pair("empty=") == ("empty", "")


def test_split_pair_keeps_the_raw_value() -> None:
    assert split_pair("k= 'x' ", example="k=v") == ("k", " 'x' ")


@pytest.mark.parametrize("item", ["seed", "=42", "  =1", ""])
def test_parse_pair_requires_key_and_equals(item: str) -> None:
    with pytest.raises(InvalidOptionError, match=r"Expected KEY=VALUE .*e\.g\. seed=42"):
        parse_pair(item)


def test_parse_pair_names_its_label_and_example() -> None:
    with pytest.raises(InvalidOptionError, match=r"^-p expects KEY=VALUE \(got 'seed'\), e\.g\. n=2\.$"):
        parse_pair("seed", label="-p", example="n=2")
    with pytest.raises(InvalidOptionError, match=r"^-p key '1abc' is not a valid field name\.$"):
        parse_pair("1abc=3", label="-p")
    with pytest.raises(InvalidOptionError, match=r"^The key 'a b' is not a valid field name\.$"):
        parse_pair("a b=3")


def test_parse_pair_labels_an_out_of_range_value() -> None:
    with pytest.raises(InvalidOptionError, match=r"^-p scale: '1e400' is out of range"):
        parse_pair("scale=1e400", label="-p")


# -- parse_pairs ---------------------------------------------------------------------------


def test_parse_pairs_json_object() -> None:
    assert parse_pairs('  {"seed": 7, "style": "vivid"}  ', label="params") == {"seed": 7, "style": "vivid"}


def test_parse_pairs_blank_is_empty() -> None:
    assert parse_pairs("", label="params") == {}
    assert parse_pairs("  \n \n", label="params") == {}


def test_parse_pairs_lines_with_comments_and_blanks() -> None:
    text = """
        # a comment
        seed=7

        style = 'vivid'
          # indented comment
        tags=["a", "b"]
        seed=8
    """
    assert parse_pairs(text, label="params") == {"seed": 8, "style": "vivid", "tags": ["a", "b"]}


def test_parse_pairs_invalid_json_object() -> None:
    with pytest.raises(InvalidOptionError, match=r"^params are not valid JSON: "):
        parse_pairs('{"seed": 7', label="params")


def test_parse_pairs_brace_text_must_be_json() -> None:
    # Text that starts with "{" is a JSON object or an error, never KEY=VALUE lines.
    with pytest.raises(InvalidOptionError, match=r"^params are not valid JSON"):
        parse_pairs("{seed=1}\nstyle=x", label="params")


def test_parse_pairs_lines_hold_json_values() -> None:
    assert parse_pairs('x=[1, 2]\ny={"a": null}', label="params") == {"x": [1, 2], "y": {"a": None}}


def test_parse_pairs_line_without_equals() -> None:
    with pytest.raises(InvalidOptionError, match=r"^params: expected KEY=VALUE on each line \(got 'oops'\)"):
        parse_pairs("seed=1\noops\n", label="params")


def test_parse_pairs_bad_key_names_the_label() -> None:
    with pytest.raises(InvalidOptionError, match=r"^extra params key 'bad key' is not a valid field name"):
        parse_pairs("bad key=1", label="extra params")

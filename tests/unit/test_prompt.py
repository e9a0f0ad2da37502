"""Prompt text: `---` separators and forgiving `{name}` interpolation from a namespace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from mesh_magic.core.prompt import interpolate, prepare_prompts, split_prompts


@dataclass
class Animal:
    name: str
    legs: int


NS: dict[str, Any] = {
    "subject": "a red fox",
    "pet": Animal("cat", 4),
    "colors": ["teal", "amber"],
    "scores": {"best": 9.5},
    "ratio": 0.12345,
    "word": "hi",
    "count": 3,
}


def test_split_on_separator_lines() -> None:
    text = "  first prompt\nline two\n---\nsecond\n  ---  \n third \n"
    assert split_prompts(text) == ["first prompt\nline two", "second", "third"]


def test_dashes_inside_a_line_do_not_split() -> None:
    assert split_prompts("a --- b\n----\nc") == ["a --- b\n----\nc"]
    assert split_prompts("one prompt") == ["one prompt"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A photo of {subject}", "A photo of a red fox"),
        ("{pet.name} with {pet.legs} legs", "cat with 4 legs"),
        ("{colors[0]} and {colors[1]}", "teal and amber"),
        ("{scores[best]}", "9.5"),
        ("ratio {ratio:.2f}", "ratio 0.12"),
        ("{count:03d}", "003"),
        ("say {word!r}", "say 'hi'"),
        ("{ subject }", "a red fox"),
    ],
)
def test_interpolation(text: str, expected: str) -> None:
    assert interpolate(text, NS) == expected


@pytest.mark.parametrize(
    "text",
    [
        "a {missing} name",
        "{pet.wings}",
        "{colors[5]}",
        "{count:zz}",
        "{subject!x}",
        "{1abc}",
        "{}",
        "{a b}",
    ],
)
def test_unknown_or_bad_fields_left_as_typed(text: str) -> None:
    assert interpolate(text, NS) == text


def test_escapes_and_stray_braces() -> None:
    assert interpolate("{{subject}} is {subject}", NS) == "{subject} is a red fox"
    assert interpolate("literal {{ and }}", NS) == "literal { and }"
    assert interpolate("a { stray", NS) == "a { stray"
    assert interpolate("and } one", NS) == "and } one"
    assert interpolate("{ {subject} }", NS) == "{ a red fox }"


def test_json_ish_text_untouched() -> None:
    text = 'style {"mood": "calm", "tones": [1, 2]}'
    assert interpolate(text, NS) == text
    multi = 'config {\n  "a": 1\n}'
    assert interpolate(multi, NS) == multi


def test_unicode() -> None:
    ns = {"名": "狐", "emoji": "🦊"}
    assert interpolate("Ein {emoji} — {名} «Fuchs»", ns) == "Ein 🦊 — 狐 «Fuchs»"
    assert interpolate("café {subject} naïve", NS) == "café a red fox naïve"


def test_no_code_execution() -> None:
    ns = {"x": 1, "__import__": __import__}
    assert interpolate("{x.__class__.__name__}", ns) == "int"  # attribute access, as str.format
    assert interpolate("{__import__('os').getcwd()}", ns) == "{__import__('os').getcwd()}"
    assert interpolate("{x + 1}", ns) == "{x + 1}"


def test_prepare_prompts_raw_and_namespace() -> None:
    text = "{subject} at noon\n---\n{pet.name}"
    assert prepare_prompts(text, NS, raw=False) == ["a red fox at noon", "cat"]
    assert prepare_prompts(text, NS, raw=True) == ["{subject} at noon", "{pet.name}"]
    assert prepare_prompts(text, None, raw=False) == ["{subject} at noon", "{pet.name}"]
    assert prepare_prompts("  {empty}  ", {"empty": ""}, raw=False) == [""]

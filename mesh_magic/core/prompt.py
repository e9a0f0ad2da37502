"""Prompt text handling: `---` separated prompts and `{name}` interpolation from a namespace.

Interpolation is forgiving on purpose: a prompt is prose, so an unknown name or
a stray brace stays exactly as typed instead of raising.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

_SEPARATOR = re.compile(r"^[ \t]*---[ \t]*$", re.MULTILINE)
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}\n]*)\}")
_FIELD = re.compile(
    r"^\s*(?P<field>[^\W\d]\w*(?:\.[^\W\d]\w*|\[[^\[\]]+\])*)\s*"
    r"(?:!(?P<conv>[rsa]))?(?::(?P<spec>[^{}]*))?$"
)
_formatter = string.Formatter()
# Widths and precisions above 9999 in a format spec are typos or abuse, never prose.
_HUGE_NUMBER = re.compile(r"\d{5,}")


def split_prompts(text: str) -> list[str]:
    """A line holding only `---` separates prompts; each part is stripped."""
    return [part.strip() for part in _SEPARATOR.split(text)]


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """Fill `{name}`, `{obj.attr}`, `{seq[0]}` (with optional !r / :spec) from `namespace`."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        parsed = _FIELD.match(match.group(1))
        if not parsed or _HUGE_NUMBER.search(parsed.group("spec") or ""):
            # A width like {x:>900000000} would build a gigabyte prompt: not a fill-in.
            return token
        try:
            value, _ = _formatter.get_field(parsed.group("field"), (), namespace)
            if parsed.group("conv"):
                value = _formatter.convert_field(value, parsed.group("conv"))
            return format(value, parsed.group("spec") or "")
        except Exception:
            # Unknown names, bad indexes and odd format specs all leave the text as typed.
            return token

    return _TOKEN.sub(replace, text)


def prepare_prompts(text: str, namespace: Mapping[str, Any] | None, *, raw: bool) -> list[str]:
    parts = split_prompts(text)
    if raw or namespace is None:
        return parts
    return [interpolate(part, namespace).strip() for part in parts]

"""The one KEY=VALUE parser: `-p`, `%meshimg_config` and the panel's extra params all use it.

A VALUE is JSON when it parses as JSON (`42`, `true`, `[1, 2]`, `{"a": 1}`), else
the text as typed; a whole-word quote pair is dropped (`'my dir'` is `my dir`).
Settings that are text by nature (a model id, a path) keep their value verbatim.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import InvalidOptionError
from .keys import hide_keys

FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class _OutOfRange(ValueError):
    pass


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _OutOfRange(text)
    return value


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN / Infinity: keep the text as typed


def short(value: Any, limit: int = 60) -> str:
    """repr of user input for a message, cut so a pasted essay doesn't flood the error.

    Key-shaped words (and any key this process knows) are masked: a key pasted in
    the wrong place must not come back in an error message.
    """
    text = hide_keys(repr(value))
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        return token[1:-1]
    return token


def parse_value(raw: str, *, what: str = "value") -> Any:
    """JSON when it parses (finite numbers only), else the string with whole-word quotes dropped."""
    try:
        return json.loads(raw, parse_float=_finite, parse_constant=_not_json)
    except _OutOfRange:
        raise InvalidOptionError(f"{what}: {short(raw)} is out of range for a number.") from None
    except (ValueError, RecursionError):
        return unquote(raw.strip())


def split_pair(item: str, *, example: str, label: str = "") -> tuple[str, str]:
    """`KEY=VALUE` into its parts; the key must look like a field name.

    `label` names where the pair was typed (`-p`), for the error message.
    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        lead = f"{label} expects" if label else "Expected"
        raise InvalidOptionError(f"{lead} KEY=VALUE (got {short(item)}), e.g. {example}.")
    if not FIELD_NAME.match(key):
        lead = f"{label} key" if label else "The key"
        raise InvalidOptionError(f"{lead} {short(key)} is not a valid field name.")
    return key, raw


def parse_pair(item: str, *, example: str = "seed=42", label: str = "") -> tuple[str, Any]:
    """`KEY=VALUE` with VALUE parsed by `parse_value`."""
    key, raw = split_pair(item, example=example, label=label)
    return key, parse_value(raw, what=f"{label} {key}".strip())


def parse_pairs(text: str, *, label: str) -> dict[str, Any]:
    """A JSON object, or one `KEY=VALUE` per line (blank lines and `#` comments skipped)."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise InvalidOptionError(f"{label} are not valid JSON: {exc}.") from None
        if not isinstance(value, dict):
            raise InvalidOptionError(f'{label} must be a JSON object, e.g. {{"seed": 42}}.')
        return value
    pairs: dict[str, Any] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise InvalidOptionError(
                f"{label}: expected KEY=VALUE on each line (got {short(line)}), "
                "e.g. seed=42, or a JSON object."
            )
        key, value = parse_pair(line, label=label)
        pairs[key] = value
    return pairs

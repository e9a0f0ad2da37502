"""The API key: a holder that never prints it, and where a key is looked up.

The key is never a plain trait value: `ApiKey`'s repr, str and pickle all keep
it hidden, and it is put on the wire only by `core.http.auth.BearerAuth`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .constants import KEY_ENV_VARS


class ApiKey:
    """Holds the key so that no repr, str or traitlets dump can print it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    @property
    def masked(self) -> str:
        return mask_key(self._value)

    def __repr__(self) -> str:
        return f"ApiKey({self.masked})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("ApiKey", self._value))

    def __reduce__(self) -> Any:
        raise TypeError("ApiKey cannot be pickled: it would write the key to disk")


def mask_key(key: str | None) -> str:
    if not key:
        return "(not set)"
    prefix = "rsk_" if key.startswith("rsk_") else ""
    tail = key[-4:] if len(key) >= 12 else ""
    return f"{prefix}…{tail}"


def key_from_environment(environ: Mapping[str, str]) -> tuple[ApiKey | None, str]:
    """The first key among MESHAPI_API_KEY, MESH_API_KEY, and its source ("env NAME")."""
    for name in KEY_ENV_VARS:
        value = environ.get(name, "").strip()
        if value:
            return ApiKey(value), f"env {name}"
    return None, "not set"

"""Checks of setting values: each validates and normalises one value, or raises `InvalidOptionError`
with a message that says what to type instead."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from .constants import OFFLINE
from .errors import InvalidOptionError
from .kv import short

Check = Callable[[Any], Any]
QUALITIES = ("auto", "low", "medium", "high", "hd", "standard")
RESPONSE_FORMATS = ("url", "b64_json")
OUTPUT_FORMATS = ("png", "jpeg", "webp")
CACHE_MODES = ("off", "on", "replay")
SIZE_ALIASES = {"square": "1024x1024", "landscape": "1536x1024", "portrait": "1024x1536"}
_SIZE_RE = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")


def choice(name: str, choices: tuple[str, ...]) -> Check:
    def check(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise InvalidOptionError(f"{name} must be one of {', '.join(choices)} (got {short(value)}).")
        return text

    return check


def int_range(name: str, low: int, high: int) -> Check:
    def check(value: Any) -> int:
        try:
            number = value if isinstance(value, int) else int(str(value).strip())
        except ValueError:
            raise InvalidOptionError(f"{name} must be a whole number from {low} to {high}.") from None
        if isinstance(value, bool) or not low <= number <= high:
            raise InvalidOptionError(f"{name} must be from {low} to {high} (got {short(value)}).")
        return number

    return check


def float_range(name: str, low: float, high: float) -> Check:
    def check(value: Any) -> float:
        if isinstance(value, bool):
            raise InvalidOptionError(f"{name} must be a number of seconds (got {short(value)}).")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidOptionError(f"{name} must be a number of seconds.") from None
        if not low <= number <= high:
            raise InvalidOptionError(f"{name} must be between {low} and {high} (got {short(value)}).")
        return number

    return check


def boolean(name: str) -> Check:
    def check(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise InvalidOptionError(f"{name} must be true or false (got {short(value)}).")

    return check


_FIX = "e.g. https://api.meshapi.ai (or 'offline' for the built-in backend)"
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def _authority(base: str) -> str:
    """The host[:port] part of `base` (after the scheme, before any / ? #)."""
    rest = base.split("://", 1)[1] if "://" in base else base
    return re.split(r"[/?#\\]", rest, maxsplit=1)[0]


def _valid_host(host: str) -> bool:
    if host.startswith("["):
        if not host.endswith("]") or "%" in host:  # no zone ids: a root is a routable host
            return False
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    if not host or len(host) > 253:
        return False
    ascii_host = host.rstrip(".")
    if not ascii_host.isascii():
        try:
            ascii_host = ascii_host.encode("idna").decode("ascii")
        except UnicodeError:
            return False
    return all(_LABEL.match(label) for label in ascii_host.split("."))


def _split_authority(authority: str) -> tuple[str, str | None]:
    """(host, port text or None); an IPv6 host keeps its brackets."""
    if authority.startswith("["):
        close = authority.find("]")
        if close == -1:
            return authority, None
        host, tail = authority[: close + 1], authority[close + 1 :]
        return (host, tail[1:]) if tail.startswith(":") else (host + tail, None)
    host, sep, port = authority.rpartition(":")
    return (host, port) if sep else (authority, None)


def check_base_url(value: Any) -> str:
    """An http(s) root with a valid host and port, and nothing a key could leak through.

    Checked as a whole before any request: scheme, host (a name, IPv4, or [IPv6]),
    port 1-65535, no user info (refused without repeating it), no query or fragment.
    """
    base = str(value).strip()
    if base.lower() == OFFLINE:
        return OFFLINE
    if "@" in _authority(base):
        # Never repeated back: the part before @ may be a password.
        raise InvalidOptionError(
            "base_url must not hold a user name or password: give the API key with "
            "MESHAPI_API_KEY or %meshimg_config --login instead."
        )
    if not base.lower().startswith(("http://", "https://")):
        raise InvalidOptionError(f"base_url {short(base)} must start with https://: {_FIX}.")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 or c == "\\" for c in base):
        raise InvalidOptionError(
            f"base_url {short(base)} holds a space, a backslash or a control character: {_FIX}."
        )
    host, port = _split_authority(_authority(base))
    if not _valid_host(host):
        raise InvalidOptionError(f"base_url {short(base)} has no usable host: {_FIX}.")
    if port is not None and port != "" and not (port.isdigit() and port.isascii() and 0 < int(port) < 65536):
        raise InvalidOptionError(f"base_url {short(base)} needs a port from 1 to 65535: {_FIX}.")
    if "?" in base or "#" in base:
        raise InvalidOptionError(f"base_url {short(base)} must be only the API root (no ? or #): {_FIX}.")
    try:  # the parser that will send the requests must read the same host
        agreed = httpx.URL(base).host == (urlsplit(base).hostname or "")
    except (httpx.InvalidURL, ValueError):
        agreed = False
    if not agreed:
        raise InvalidOptionError(f"base_url {short(base)} is not a valid URL: {_FIX}.")
    return base.rstrip("/")


def check_model(value: Any) -> str:
    model = str(value).strip()
    if not model:
        raise InvalidOptionError("model is empty: give a model id such as openai/gpt-image-1.")
    return model


def normalise_size(value: Any) -> str:
    text = str(value).strip().lower()
    if text in ("auto", ""):
        return "auto"
    if text in SIZE_ALIASES:
        return SIZE_ALIASES[text]
    match = _SIZE_RE.match(text)
    if not match:
        raise InvalidOptionError(
            f"size {short(value)} is not understood: use auto, WIDTHxHEIGHT (e.g. 1024x1024), "
            "square, landscape or portrait."
        )
    width, height = int(match.group(1)), int(match.group(2))
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise InvalidOptionError(f"size {short(value)} is out of range: each side must be 16-8192 px.")
    return f"{width}x{height}"


def check_params(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidOptionError("params must be a dict of extra body fields, e.g. {'seed': 7}.")
    return dict(value)


def check_display_px(value: Any) -> int:
    px = int_range("display_max_px", 0, 8192)(value)
    if 0 < px < 16:
        raise InvalidOptionError("display_max_px must be 0 (embed full resolution) or 16-8192.")
    return int(px)


def check_path(value: Any) -> str:
    return str(Path(str(value)).expanduser())


def usd_amount(name: str) -> Check:
    """A limit in US dollars: a number >= 0 ("$0.50" and "0.5" read the same)."""

    def check(value: Any) -> float:
        text = str(value).strip().lstrip("$") if isinstance(value, str) else value
        if isinstance(text, bool):
            raise InvalidOptionError(f"{name} must be an amount in US dollars, e.g. {name}=0.50.")
        try:
            number = float(text)
        except (TypeError, ValueError):
            raise InvalidOptionError(f"{name} must be an amount in US dollars, e.g. {name}=0.50.") from None
        if not number >= 0 or number == float("inf"):
            raise InvalidOptionError(f"{name} must be 0 or more US dollars (got {short(value)}).")
        return number

    return check

"""The API key: a holder that never prints it, its checks, and the redactor of what servers echo.

The key is never a plain trait value: `ApiKey`'s repr, str and pickle all keep
it hidden, and it is put on the wire only by `core.http.auth.BearerAuth`. A key
is checked when it is made (surrounding ASCII whitespace dropped; a space, a
control or a non-ASCII character inside refused), so it can always be sent in
a header. Every key made is known to `SECRETS`, which scrubs it from anything a
server sends back and, through `KeyLogFilter`, from httpx/httpcore log records.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

from .constants import KEY_ENV_VARS
from .errors import InvalidOptionError, MeshImageError

P = ParamSpec("P")
R = TypeVar("R")
E = TypeVar("E", bound=BaseException)

# What may surround a key pasted from a page or a file: dropped. Anything else is refused.
_SURROUNDING = " \t\r\n\x0b\x0c"
# A key shorter than this is not scrubbed from server text: it would mangle ordinary words.
MIN_SCRUB_LENGTH = 8
# Key-shaped words (typed where no key belongs) are masked in messages that repeat user input.
_KEY_SHAPED = re.compile(r"rsk_[^\s'\"…]{4,}")
MASK = "***"
# Loggers that may print request or response headers at DEBUG (httpcore logs both).
LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "hpack",
    "hpack.hpack",
    "hpack.table",
    "h2",
    "mesh_magic",
)


def key_problem(text: str) -> str | None:
    """What makes `text` (already stripped) unusable in an Authorization header; never the text."""
    for position, char in enumerate(text, 1):
        if char.isspace():
            kind = "a space or line break"
        elif ord(char) < 32 or ord(char) == 127:
            kind = "a control character"
        elif ord(char) > 126:
            kind = "a non-ASCII character (a smart quote or an invisible character from copy-paste?)"
        else:
            continue
        return f"has {kind} at position {position} of {len(text)}"
    return None


class ApiKey:
    """Holds the key so that no repr, str or traitlets dump can print it."""

    __slots__ = ("_value",)

    def __init__(self, value: str, where: str = "The API key") -> None:
        text = value.strip(_SURROUNDING) if isinstance(value, str) else ""
        problem = key_problem(text) if text else "is empty"
        if problem is not None:
            del value, text  # this frame is in the traceback: it must not hold the key
            raise InvalidOptionError(
                f"{where} {problem}: it cannot be sent in an HTTP header. "
                "Copy the key again as plain text and set it again."
            )
        self._value = text
        SECRETS.add(text)

    def reveal(self) -> str:
        return self._value

    @property
    def masked(self) -> str:
        # getattr: a refused key's half-made holder is in its __init__ frame's locals.
        return mask_key(getattr(self, "_value", None))

    def __repr__(self) -> str:
        return f"ApiKey({self.masked})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("ApiKey", self._value))

    def __reduce__(self) -> Any:
        raise TypeError("ApiKey cannot be pickled: it would write the key to disk")


def optional_key(value: object, where: str) -> ApiKey | None:  # wrapped below, once defined
    """`value` as a checked key, None when it is missing or blank."""
    if isinstance(value, ApiKey):
        return value
    if not isinstance(value, str) or not value.strip(_SURROUNDING):
        return None
    return ApiKey(value, where)


class Redactor:
    """The keys this process has seen, scrubbed from text that came from a server.

    Holds the most recent keys (a few: a session uses one or two); its repr, like
    `ApiKey`'s, never shows one, so a frame or a traceback that names it is safe.
    """

    __slots__ = ("_keys", "_lock")
    LIMIT = 32

    def __init__(self) -> None:
        self._keys: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def add(self, key: str) -> None:
        if len(key) < MIN_SCRUB_LENGTH:
            return
        forms = {key, quote(key, safe=""), json.dumps(key)[1:-1]}
        with self._lock:
            self._keys.pop(key, None)
            self._keys[key] = tuple(sorted(forms, key=len, reverse=True))
            while len(self._keys) > self.LIMIT:
                self._keys.pop(next(iter(self._keys)))
        install_log_filter()

    def __len__(self) -> int:
        return len(self._keys)

    def known(self) -> dict[str, tuple[str, ...]]:
        """A copy of what is known (tests put it back with `restore`)."""
        with self._lock:
            return dict(self._keys)

    def restore(self, known: dict[str, tuple[str, ...]]) -> None:
        with self._lock:
            self._keys = dict(known)

    def scrub(self, text: str) -> str:
        """`text` with every known key (raw, URL- or JSON-escaped) replaced by ***."""
        with self._lock:
            forms = [form for group in self._keys.values() for form in group]
        for form in forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def scrub_bytes(self, data: bytes) -> bytes:
        """`data` with every known key (as UTF-8) replaced by ***: a body before it is parsed.

        So no frame that holds an answer's raw bytes holds an echoed key either.
        """
        with self._lock:
            forms = [form.encode() for group in self._keys.values() for form in group]
        for form in forms:
            if form in data:
                data = data.replace(form, MASK.encode())
        return data

    def scrub_optional(self, text: str | None) -> str | None:
        return None if text is None else self.scrub(text)

    def scrub_tree(self, value: Any, *, skip: frozenset[str] = frozenset()) -> Any:
        """A JSON value with every string scrubbed (values under a key in `skip` kept as is)."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, list):
            return [self.scrub_tree(v, skip=skip) for v in value]
        if isinstance(value, dict):
            return {
                self.scrub(k) if isinstance(k, str) else k: v if k in skip else self.scrub_tree(v, skip=skip)
                for k, v in value.items()
            }
        return value

    def __repr__(self) -> str:
        return f"Redactor({len(self._keys)} keys)"

    def __reduce__(self) -> Any:
        raise TypeError("Redactor cannot be pickled: it would write the keys to disk")


SECRETS = Redactor()


def hide_keys(text: str) -> str:
    """`text` with known keys and key-shaped words masked: for messages that repeat user input."""
    return _KEY_SHAPED.sub(lambda m: mask_key(m.group(0)), SECRETS.scrub(text))


class KeyLogFilter(logging.Filter):
    """Redacts known keys from log records (httpcore logs headers at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is the logging module's to report
            return True
        scrubbed = SECRETS.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = SECRETS.scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = SECRETS.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = SECRETS.scrub(record.stack_info)
        return True


_LOG_FILTER = KeyLogFilter()


def install_log_filter() -> None:
    """Put the filter on the loggers that may print headers (once per logger).

    A logger's filters see only records logged on it, not its children's: so each
    known child, and any other child that exists by now, gets it too.
    """
    roots = tuple(name for name in LOGGERS if "." not in name)
    existing = [n for n in list(logging.root.manager.loggerDict) if n.split(".")[0] in roots]
    for name in {*LOGGERS, *existing}:
        logger = logging.getLogger(name)
        if _LOG_FILTER not in logger.filters:
            logger.addFilter(_LOG_FILTER)


def forgets_key_arguments(fn: Callable[P, R]) -> Callable[P, R]:
    """Raise `fn`'s errors from a frame that no longer holds its arguments (they may hold a key).

    The frames below (and their locals: a key typed with a stray character) are
    dropped from the traceback, and so is any chained exception.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except MeshImageError as exc:
            error = exc
        del args, kwargs
        raise detached(error)

    return wrapper


def detached(error: E) -> E:
    """`error` with no traceback and no chained exception: nothing below it to hold a key."""
    error.__traceback__ = None
    error.__context__ = None
    error.__cause__ = None
    return error


optional_key = forgets_key_arguments(optional_key)


def mask_key(key: str | None) -> str:
    if not key:
        return "(not set)"
    prefix = "rsk_" if key.startswith("rsk_") else ""
    tail = key[-4:] if len(key) >= 12 else ""
    return f"{prefix}…{tail}"


def key_from_environment(environ: Mapping[str, str]) -> tuple[ApiKey | None, str]:
    """The first key among MESHAPI_API_KEY, MESH_API_KEY, and its source ("env NAME")."""
    for name in KEY_ENV_VARS:
        key = optional_key(environ.get(name, ""), f"The key in {name}")
        if key is not None:
            return key, f"env {name}"
    return None, "not set"

"""Every setting, declared once: name, type, default, check, env var, magic flag, panel field, help.

`SETTINGS` is the table. The traitlets `MeshImg` (core.config), the resolved
`Settings` of a call, validation, the magic's flags, the panel's fields and the
README's settings table all follow from it. Adding a setting is one entry here
plus the behaviour that reads it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from .checks import (
    CACHE_MODES,
    OUTPUT_FORMATS,
    QUALITIES,
    RESPONSE_FORMATS,
    SIZE_ALIASES,
    Check,
    boolean,
    check_base_url,
    check_display_px,
    check_model,
    check_params,
    check_path,
    choice,
    float_range,
    int_range,
    normalise_size,
    usd_amount,
)
from .constants import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, OFFLINE
from .keys import ApiKey
from .urls import api_root

__all__ = [
    "QUALITIES",
    "OUTPUT_FORMATS",
    "RESPONSE_FORMATS",
    "CACHE_MODES",
    "SIZE_ALIASES",
    "Setting",
    "Settings",
    "SETTINGS",
    "BY_NAME",
    "SETTING_NAMES",
    "DEFAULTS",
    "WIRE_FIELDS",
    "normalise_size",
    "setting",
    "flagged",
    "unknown_names",
    "validate",
    "settings_markdown",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Setting:
    """One setting. `kind` is its Python type (for the trait); `check` validates and normalises.

    `flags` are the `%%meshimg` option strings (none: not a magic option); `panel`
    names the panel's input for it (none: not in the form); `wire` marks a field
    of the request body with the same name. As a class attribute of `Settings` it
    reads that call's value.
    """

    default: Any
    help: str
    check: Check
    kind: type = object
    choices: tuple[str, ...] = ()
    env: str | None = None
    flags: tuple[str, ...] = ()
    metavar: str | None = None
    panel: str | None = None
    wire: bool = False
    default_text: str | None = None  # how the README shows the default, when not the value
    name: str = ""

    def __set_name__(self, owner: type, name: str) -> None:
        object.__setattr__(self, "name", name)
        if self.kind is object:
            object.__setattr__(self, "kind", type(self.default))

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        return self if obj is None else obj._values[self.name]

    def validate(self, value: Any) -> Any:
        return None if value is None else self.check(value)

    @property
    def shown_default(self) -> str:
        if self.default_text is not None:
            return self.default_text
        return f"`{self.default}`" if not isinstance(self.default, dict) else "`{}`"


def setting(default: T, help: str, check: Check, **facts: Any) -> T:
    """Declare a setting on `Settings`; typed as its value so that `settings.n` is an int."""
    return cast(T, Setting(default, help, check, **facts))


# -- the table ----------------------------------------------------------------------------


class Settings:
    """Effective settings for one call (each declared once, below), with where each came from."""

    base_url: str = setting(
        DEFAULT_BASE_URL,
        check=check_base_url,
        env="MESHAPI_BASE_URL",
        help="API root, with or without `/v1`; `offline` selects the built-in offline backend",
    )
    model: str = setting(
        "openai/gpt-image-1",
        check=check_model,
        flags=("-m", "--model"),
        metavar="M[,M2,...]",
        panel="model",
        wire=True,
        help="model id; several, comma-separated, compare models side by side",
    )
    n: int = setting(
        1,
        check=int_range("n", 1, 10),
        flags=("-n", "--n"),
        metavar="N",
        panel="count",
        wire=True,
        help="images per prompt and model (1-10)",
    )
    size: str = setting(
        "auto",
        check=normalise_size,
        flags=("-s", "--size"),
        metavar="S",
        panel="size",
        wire=True,
        help="`auto`, `WxH`, `square` (1024x1024), `landscape` (1536x1024), `portrait` (1024x1536)",
    )
    quality: str = setting(
        "auto",
        check=choice("quality", QUALITIES),
        choices=QUALITIES,
        flags=("-q", "--quality"),
        metavar="Q",
        panel="choice",
        wire=True,
        help="`auto`, `low`, `medium`, `high`, `hd`, `standard`",
    )
    response_format: str | None = setting(
        None,
        check=choice("response_format", RESPONSE_FORMATS),
        kind=str,
        choices=RESPONSE_FORMATS,
        flags=("--response-format",),
        metavar="R",
        wire=True,
        default_text="the server's choice",
        help="`url` or `b64_json`; links, data URIs and base64 answers are all handled either way",
    )
    output_format: str | None = setting(
        None,
        check=choice("output_format", OUTPUT_FORMATS),
        kind=str,
        choices=OUTPUT_FORMATS,
        flags=("-f", "--output-format"),
        metavar="F",
        panel="optional_choice",
        wire=True,
        default_text="not sent",
        help="`png`, `jpeg`, `webp`",
    )
    stream: bool = setting(
        False,
        check=boolean("stream"),
        flags=("--stream",),
        wire=True,
        help="stream: show progress, and partial images when the model sends them",
    )
    params: Mapping[str, Any] = setting(
        {},
        check=check_params,
        kind=dict,
        flags=("-p", "--param"),
        metavar="KEY=VALUE",
        panel="params",
        help='extra body fields sent with every request, e.g. `{"seed": 7}`; a call\'s `-p` adds to them',
    )
    timeout: float = setting(
        DEFAULT_TIMEOUT,
        check=float_range("timeout", 0.1, 3600),
        flags=("--timeout",),
        metavar="SECONDS",
        default_text="`180`",
        help="seconds per request",
    )
    max_retries: int = setting(
        3,
        check=int_range("max_retries", 0, 10),
        help="retries on 429/502/503/504 and on connection failures (0-10)",
    )
    max_retry_wait: float = setting(
        20.0,
        check=float_range("max_retry_wait", 0, 3600),
        default_text="`20`",
        help="seconds a request may spend waiting between its retries, in all; past it the call "
        "fails at once, saying when to try again",
    )
    concurrency: int = setting(8, check=int_range("concurrency", 1, 64), help="parallel requests (1-64)")
    display_max_px: int = setting(
        512, check=check_display_px, help="longest side of inline thumbnails; `0` embeds full resolution"
    )
    store_dir: str | None = setting(
        None,
        check=check_path,
        kind=str,
        env="MESHIMG_STORE_DIR",
        default_text="per-user data folder",
        help="where generated images are kept (see [Store](#store-cache-and-replay))",
    )
    cache: str = setting(
        "off",
        check=choice("cache", CACHE_MODES),
        choices=CACHE_MODES,
        env="MESHIMG_CACHE",
        help="`off`, `on` (reuse identical requests from the store), `replay` (never call the API)",
    )
    max_cost: float | None = setting(
        None,
        check=usd_amount("max_cost"),
        kind=float,
        default_text="none",
        help="USD one call may cost at most: a call whose estimate is over it is refused before "
        "sending (and so is a model with no known price)",
    )
    budget: float | None = setting(
        None,
        check=usd_amount("budget"),
        kind=float,
        default_text="none",
        help="USD this session may spend in all: a call that would pass it is refused before sending",
    )

    def __init__(
        self, api_key: ApiKey | None, values: Mapping[str, Any], sources: Mapping[str, str] | None = None
    ) -> None:
        self.api_key = api_key
        self._values = {name: values.get(name, DEFAULTS[name]) for name in SETTING_NAMES}
        self.sources: Mapping[str, str] = dict(sources or {})

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed (already valid: the caller vouches for them)."""
        sources = {**self.sources, **{name: "call" for name in changes}}
        return Settings(self.api_key, {**self._values, **changes}, sources)

    def values(self) -> dict[str, Any]:
        return dict(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and other._values == self._values and other.api_key == self.api_key

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"Settings(api_key={self.api_key!r}, {shown})"

    @property
    def offline(self) -> bool:
        return self.base_url == OFFLINE

    @property
    def api_root(self) -> str:
        return api_root(self.base_url)

    @property
    def models(self) -> list[str]:
        return [m.strip() for m in self.model.split(",") if m.strip()]

    def is_set(self, name: str) -> bool:
        """True when `name` came from the call, the session or the environment (not a default)."""
        return self.sources.get(name, "default") != "default"


SETTINGS: tuple[Setting, ...] = tuple(v for v in vars(Settings).values() if isinstance(v, Setting))
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
SETTING_NAMES: tuple[str, ...] = tuple(BY_NAME)
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}
# Body fields a typed option owns: `-p` / extra params may not set them.
WIRE_FIELDS: frozenset[str] = frozenset({"prompt"} | {s.name for s in SETTINGS if s.wire})


def flagged() -> Iterator[Setting]:
    """Settings that are `%%meshimg` options, in table order."""
    return (s for s in SETTINGS if s.flags)


def unknown_names(names: Any, *, extra: tuple[str, ...] = ("api_key",)) -> list[str]:
    return sorted(set(names) - set(SETTING_NAMES) - set(extra))


def validate(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check and normalise setting values; raises InvalidOptionError naming the fix."""
    return {name: BY_NAME[name].validate(value) for name, value in values.items()}


def settings_markdown() -> str:
    """The README's settings table, generated from `SETTINGS`."""
    lines = ["| setting | default | meaning | environment |", "|---|---|---|---|"]
    for s in SETTINGS:
        env = f" `{s.env}` " if s.env else " "
        lines.append(f"| `{s.name}` | {s.shown_default} | {s.help} |{env}|")
    return "\n".join(lines)

"""Session configuration: the `MeshImg` Configurable, the API key holder, and resolution.

Precedence is call options > session (traits set by %config, ipython_config.py,
%meshimg_config or configure()) > environment > defaults. A trait left at
`None` means "not set in this session", which is what lets `resolve` report where
each effective value came from.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitlets import Bool, Dict, Enum, Float, Int, Unicode
from traitlets.config import Configurable

from ._errors import InvalidOptionError

DEFAULT_BASE_URL = "https://api.meshapi.ai"
OFFLINE = "offline"
KEY_ENV_VARS = ("MESHAPI_API_KEY", "MESH_API_KEY")
QUALITIES = ("auto", "low", "medium", "high", "hd", "standard")
RESPONSE_FORMATS = ("url", "b64_json")
OUTPUT_FORMATS = ("png", "jpeg", "webp")
CACHE_MODES = ("off", "on", "replay")

DEFAULTS: dict[str, Any] = {
    "base_url": DEFAULT_BASE_URL,
    "model": "openai/gpt-image-1",
    "n": 1,
    "size": "auto",
    "quality": "auto",
    "response_format": "b64_json",
    "output_format": None,
    "stream": False,
    "params": {},
    "timeout": 180.0,
    "max_retries": 3,
    "concurrency": 8,
    "display_max_px": 512,
    "store_dir": None,
    "cache": "off",
}
SETTING_NAMES = tuple(DEFAULTS)

# Environment variables for settings other than the key.
_ENV_SETTINGS = {
    "base_url": "MESHAPI_BASE_URL",
    "cache": "MESHIMG_CACHE",
    "store_dir": "MESHIMG_STORE_DIR",
}


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


class MeshImg(Configurable):
    """Defaults for %%meshimg, the panel and the Python API (the key is not a trait)."""

    base_url = Unicode(
        None, allow_none=True,
        help="API base URL (with or without /v1), or 'offline' for the built-in backend. "
             "Env: MESHAPI_BASE_URL. Default https://api.meshapi.ai",
    ).tag(config=True)
    model = Unicode(
        None, allow_none=True,
        help="Model id, e.g. openai/gpt-image-1; comma-separate several to compare.",
    ).tag(config=True)
    n = Int(None, allow_none=True, help="Images per prompt and model (1-10).").tag(config=True)
    size = Unicode(
        None, allow_none=True, help="auto, WIDTHxHEIGHT, square, landscape or portrait."
    ).tag(config=True)
    quality = Enum(
        QUALITIES, default_value=None, allow_none=True, help="auto|low|medium|high|hd|standard."
    ).tag(config=True)
    response_format = Enum(
        RESPONSE_FORMATS, default_value=None, allow_none=True, help="url or b64_json."
    ).tag(config=True)
    output_format = Enum(
        OUTPUT_FORMATS, default_value=None, allow_none=True, help="png, jpeg or webp."
    ).tag(config=True)
    stream = Bool(None, allow_none=True, help="Stream progress and partial images.").tag(
        config=True
    )
    params = Dict(
        default_value=None, allow_none=True,
        help="Extra body fields sent with every request, e.g. {'seed': 7}.",
    ).tag(config=True)
    timeout = Float(None, allow_none=True, help="Seconds per request (default 180).").tag(
        config=True
    )
    max_retries = Int(
        None, allow_none=True, help="Retries on 429/502/503/504 and connect errors (default 3)."
    ).tag(config=True)
    concurrency = Int(None, allow_none=True, help="Parallel requests (default 8).").tag(
        config=True
    )
    display_max_px = Int(
        None, allow_none=True,
        help="Longest side of inline thumbnails in pixels (default 512); 0 embeds full resolution.",
    ).tag(config=True)
    store_dir = Unicode(
        None, allow_none=True, help="Where generated images are kept. Env: MESHIMG_STORE_DIR."
    ).tag(config=True)
    cache = Enum(
        CACHE_MODES, default_value=None, allow_none=True,
        help="off | on (reuse identical requests from the store) | replay (never call the API). "
             "Env: MESHIMG_CACHE.",
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._api_key: ApiKey | None = None

    @property
    def api_key(self) -> ApiKey | None:
        return self._api_key

    def set_api_key(self, key: str | None) -> None:
        key = (key or "").strip()
        self._api_key = ApiKey(key) if key else None

    def session_values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SETTING_NAMES if getattr(self, name) is not None}

    def reset(self) -> None:
        for name in SETTING_NAMES:
            setattr(self, name, None)
        self._api_key = None


_session: MeshImg | None = None


def session() -> MeshImg:
    """The process-wide session config, shared by magics, panel and Python API."""
    global _session
    if _session is None:
        _session = MeshImg()
    return _session


def install_session(config: MeshImg) -> MeshImg:
    """Make `config` the session (the extension does this with one parented to the shell)."""
    global _session
    if _session is not None and _session is not config:
        for name, value in _session.session_values().items():
            if getattr(config, name) is None:
                setattr(config, name, value)
        if config.api_key is None and _session.api_key is not None:
            config._api_key = _session.api_key
    _session = config
    return config


@dataclass(frozen=True)
class Settings:
    """Effective settings for one call, with where each value came from."""

    api_key: ApiKey | None
    base_url: str
    model: str
    n: int
    size: str
    quality: str
    response_format: str
    output_format: str | None
    stream: bool
    params: Mapping[str, Any]
    timeout: float
    max_retries: int
    concurrency: int
    display_max_px: int
    store_dir: str | None
    cache: str
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def offline(self) -> bool:
        return self.base_url == OFFLINE

    @property
    def api_root(self) -> str:
        """Base URL normalised to end in /v1 (users may give it with or without)."""
        if self.offline:
            from .server import OFFLINE_BASE_URL

            return OFFLINE_BASE_URL + "/v1"
        root = self.base_url.rstrip("/")
        return root if root.endswith("/v1") else root + "/v1"

    @property
    def models(self) -> list[str]:
        return [m.strip() for m in self.model.split(",") if m.strip()]


def _env_key(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    for name in KEY_ENV_VARS:
        value = environ.get(name, "").strip()
        if value:
            return value, name
    return None, None


def resolve(
    overrides: Mapping[str, Any] | None = None,
    *,
    config: MeshImg | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Combine call options, session config, environment and defaults into `Settings`."""
    config = config if config is not None else session()
    environ = os.environ if environ is None else environ
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(overrides) - set(SETTING_NAMES) - {"api_key"}
    if unknown:
        raise InvalidOptionError(
            f"Unknown option {', '.join(sorted(unknown))}. Known: {', '.join(SETTING_NAMES)}."
        )
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    session_values = config.session_values()
    for name in SETTING_NAMES:
        env_name = _ENV_SETTINGS.get(name)
        if name in overrides:
            values[name], sources[name] = overrides[name], "call"
        elif name in session_values:
            values[name], sources[name] = session_values[name], "session"
        elif env_name and environ.get(env_name, "").strip():
            values[name], sources[name] = environ[env_name].strip(), f"env {env_name}"
        else:
            values[name], sources[name] = DEFAULTS[name], "default"

    if "params" in overrides and "params" in session_values:
        # Call params add to the session's rather than replacing them.
        values["params"] = {**session_values["params"], **overrides["params"]}

    key: ApiKey | None
    if "api_key" in overrides:
        raw = overrides["api_key"]
        key = raw if isinstance(raw, ApiKey) else ApiKey(str(raw))
        sources["api_key"] = "call"
    elif config.api_key is not None:
        key, sources["api_key"] = config.api_key, "session"
    else:
        env_value, env_name = _env_key(environ)
        key = ApiKey(env_value) if env_value else None
        sources["api_key"] = f"env {env_name}" if env_name else "not set"

    values = validate_settings(values)
    return Settings(api_key=key, sources=sources, **values)


def validate_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise setting values; raises InvalidOptionError naming the fix."""
    from ._request import normalise_size

    out = dict(values)
    base = str(out["base_url"]).strip()
    out["base_url"] = OFFLINE if base.lower() == OFFLINE else base.rstrip("/")
    if out["base_url"] != OFFLINE and not out["base_url"].startswith(("http://", "https://")):
        raise InvalidOptionError(
            f"base_url {base!r} must start with https:// (or be 'offline' for the built-in backend)."
        )
    out["model"] = str(out["model"]).strip()
    if not out["model"]:
        raise InvalidOptionError("model is empty: give a model id such as openai/gpt-image-1.")
    out["n"] = _as_int("n", out["n"], 1, 10)
    out["size"] = normalise_size(out["size"])
    out["quality"] = _choice("quality", out["quality"], QUALITIES)
    out["response_format"] = _choice("response_format", out["response_format"], RESPONSE_FORMATS)
    if out["output_format"] is not None:
        out["output_format"] = _choice("output_format", out["output_format"], OUTPUT_FORMATS)
    out["stream"] = _as_bool("stream", out["stream"])
    if not isinstance(out["params"], Mapping):
        raise InvalidOptionError("params must be a dict of extra body fields, e.g. {'seed': 7}.")
    out["params"] = dict(out["params"])
    out["timeout"] = _as_float("timeout", out["timeout"], 0.1, 3600)
    out["max_retries"] = _as_int("max_retries", out["max_retries"], 0, 10)
    out["concurrency"] = _as_int("concurrency", out["concurrency"], 1, 64)
    out["display_max_px"] = _as_int("display_max_px", out["display_max_px"], 0, 8192)
    if 0 < out["display_max_px"] < 16:
        raise InvalidOptionError("display_max_px must be 0 (embed full resolution) or 16-8192.")
    out["cache"] = _choice("cache", out["cache"], CACHE_MODES)
    if out["store_dir"] is not None:
        out["store_dir"] = str(Path(str(out["store_dir"])).expanduser())
    return out


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise InvalidOptionError(f"{name} must be one of {', '.join(choices)} (got {value!r}).")
    return text


def _as_int(name: str, value: Any, low: int, high: int) -> int:
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise InvalidOptionError(f"{name} must be a whole number from {low} to {high}.") from None
    if isinstance(value, bool) or not low <= number <= high:
        raise InvalidOptionError(f"{name} must be from {low} to {high} (got {value!r}).")
    return number


def _as_float(name: str, value: Any, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidOptionError(f"{name} must be a number of seconds.") from None
    if not low <= number <= high:
        raise InvalidOptionError(f"{name} must be between {low} and {high} (got {value!r}).")
    return number


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise InvalidOptionError(f"{name} must be true or false (got {value!r}).")


def configure(config: MeshImg | None = None, **settings: Any) -> MeshImg:
    """Set session values (validated); `api_key=` works but warns that it is now in source."""
    config = config if config is not None else session()
    unknown = set(settings) - set(SETTING_NAMES) - {"api_key"}
    if unknown:
        raise InvalidOptionError(
            f"Unknown setting {', '.join(sorted(unknown))}. Known: api_key, {', '.join(SETTING_NAMES)}."
        )
    if "api_key" in settings:
        key = settings.pop("api_key")
        config.set_api_key(key.reveal() if isinstance(key, ApiKey) else key)
        if key:
            warnings.warn(
                "The API key is now in your notebook source. Prefer the MESHAPI_API_KEY "
                "environment variable or %meshimg_config --login (mesh_magic.login()).",
                UserWarning,
                stacklevel=3,
            )
    if not settings:
        return config
    # Validate the merged result before touching the session, so a bad value changes nothing.
    # None unsets a session value (back to env / default).
    merged = {**DEFAULTS, **config.session_values(),
              **{k: v for k, v in settings.items() if v is not None}}
    checked = validate_settings(merged)
    for name in settings:
        setattr(config, name, checked[name] if settings[name] is not None else None)
    return config

"""Session configuration: the `MeshImg` Configurable, and resolving a call's effective `Settings`.

Precedence is call options > session (traits set by %config, ipython_config.py,
%meshimg_config or configure()) > environment > defaults. A trait left at
`None` means "not set in this session", which is what lets `resolve` report where
each effective value came from. The traits themselves come from the settings table.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from traitlets import Bool, Dict, Enum, Float, Int, TraitType, Unicode
from traitlets.config import Configurable

from . import key_sources
from .errors import InvalidOptionError
from .keys import ApiKey, forgets_key_arguments, key_from_environment, optional_key
from .settings import DEFAULTS, SETTING_NAMES, SETTINGS, Setting, Settings, unknown_names, validate

_TRAIT_TYPES: dict[type, type[TraitType[Any, Any]]] = {
    str: Unicode,
    int: Int,
    float: Float,
    bool: Bool,
    dict: Dict,
}


def _trait(setting: Setting) -> TraitType[Any, Any]:
    text = setting.help.replace("`", "")
    if setting.env:
        text += f". Env: {setting.env}"
    if setting.choices:
        return Enum(setting.choices, default_value=None, allow_none=True, help=text).tag(config=True)
    trait = _TRAIT_TYPES[setting.kind]
    return trait(default_value=None, allow_none=True, help=text).tag(config=True)


class SessionConfig(Configurable):
    """The key holder and helpers of `MeshImg` (its traits come from the settings table)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._api_key: ApiKey | None = None

    @property
    def api_key(self) -> ApiKey | None:
        return self._api_key

    @forgets_key_arguments
    def set_api_key(self, key: str | ApiKey | None) -> None:
        """The session key (surrounding whitespace dropped; a blank one unsets it)."""
        self._api_key = optional_key(key, "The API key")

    def session_values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SETTING_NAMES if getattr(self, name) is not None}

    def reset(self) -> None:
        for name in SETTING_NAMES:
            setattr(self, name, None)
        self._api_key = None
        key_sources.forget_lookups()  # a Colab secret shared since then is found next time


MeshImg: type[SessionConfig] = type(
    "MeshImg",
    (SessionConfig,),
    {
        "__doc__": "Defaults for %%meshimg, the panel and the Python API (the key is not a trait).",
        "__module__": __name__,
        **{s.name: _trait(s) for s in SETTINGS},
    },
)

_session: SessionConfig | None = None


def session() -> SessionConfig:
    """The process-wide session config, shared by magics, panel and Python API."""
    global _session
    if _session is None:
        _session = MeshImg()
    return _session


def install_session(config: SessionConfig) -> SessionConfig:
    """Make `config` the session (the extension does this with one parented to the shell)."""
    global _session
    if _session is not None and _session is not config:
        for name, value in _session.session_values().items():
            if getattr(config, name) is None:
                setattr(config, name, value)
        if config.api_key is None and _session.api_key is not None:
            config.set_api_key(_session.api_key)
    _session = config
    return config


def _unknown(kind: str, names: Any) -> InvalidOptionError | None:
    unknown = unknown_names(names)
    if not unknown:
        return None
    return InvalidOptionError(
        f"Unknown {kind} {', '.join(unknown)}. Known: api_key, {', '.join(SETTING_NAMES)}."
    )


@forgets_key_arguments
def resolve(
    overrides: Mapping[str, Any] | None = None,
    *,
    config: SessionConfig | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Combine call options, session config, environment and defaults into `Settings`."""
    config = config if config is not None else session()
    environ = os.environ if environ is None else environ
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if (error := _unknown("option", overrides)) is not None:
        raise error
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    in_session = config.session_values()
    for s in SETTINGS:
        env_value = environ.get(s.env, "").strip() if s.env else ""
        if s.name in overrides:
            values[s.name], sources[s.name] = overrides[s.name], "call"
        elif s.name in in_session:
            values[s.name], sources[s.name] = in_session[s.name], "session"
        elif env_value:
            values[s.name], sources[s.name] = env_value, f"env {s.env}"
        else:
            values[s.name], sources[s.name] = DEFAULTS[s.name], "default"
    if "params" in overrides and "params" in in_session:
        # Call params add to the session's rather than replacing them.
        values["params"] = {**in_session["params"], **overrides["params"]}
    key, sources["api_key"] = _resolve_key(overrides, config, environ)
    return Settings(key, validate(values), sources)


def _resolve_key(
    overrides: Mapping[str, Any], config: SessionConfig, environ: Mapping[str, str]
) -> tuple[ApiKey | None, str]:
    if "api_key" in overrides:
        return optional_key(overrides["api_key"], "The api_key option"), "call"
    if config.api_key is not None:
        return config.api_key, "session"
    key, source = key_from_environment(environ)
    if key is not None:
        return key, source
    # SPEC 11: then a Colab secret, then a key remembered by --login --remember.
    return key_sources.stored_key()


@forgets_key_arguments
def configure(config: SessionConfig | None = None, **settings: Any) -> SessionConfig:
    """Set session values (validated); `api_key=` works but warns that it is now in source."""
    config = config if config is not None else session()
    if (error := _unknown("setting", settings)) is not None:
        raise error
    if "api_key" in settings:
        key = settings.pop("api_key")
        config.set_api_key(key)
        if key:
            warnings.warn(
                "The API key is now in your notebook source. Prefer the MESHAPI_API_KEY "
                "environment variable or %meshimg_config --login (mesh_magic.login()).",
                UserWarning,
                stacklevel=_outside_package(),
            )
    # Validated before touching the session, so a bad value changes nothing.
    # None unsets a session value (back to env / default).
    checked = validate({k: v for k, v in settings.items() if v is not None})
    for name in settings:
        setattr(config, name, checked.get(name))
    return config


def _outside_package() -> int:
    """The `stacklevel` of the first caller outside mesh_magic: the warning names the user's line."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    return level


@forgets_key_arguments
def login(key: str | None = None, ask: Callable[[str], str] | None = None) -> ApiKey:
    """Keep `key` (or one typed at a hidden prompt) as this session's key; returns it."""
    if key is None:
        import getpass

        key = (ask or getpass.getpass)("MeshAPI key (input hidden): ")
    kept = optional_key(key, "The key entered")
    if kept is None:
        raise InvalidOptionError("No key entered; nothing changed.")
    session().set_api_key(kept)
    key_sources.forget_lookups()
    return kept


@forgets_key_arguments  # a failed write's frames hold the key's bytes
def remember_key(key: ApiKey | None = None) -> str:
    """Keep `key` (default: the session's) on this machine for later sessions; says where."""
    key = key if key is not None else session().api_key
    if key is None:
        raise InvalidOptionError(
            "No session key to remember: use %meshimg_config --login --remember "
            "(mesh_magic.login(remember=True))."
        )
    try:
        place, path = key_sources.remember(key)
    except OSError as exc:
        raise InvalidOptionError(
            f"Could not remember the key ({type(exc).__name__}: {exc.strerror or exc}); "
            "it is kept for this session only."
        ) from None
    if place == key_sources.KEYRING:
        return "in the OS keyring"
    return f"in {path} (readable by you only)"


def forget_key() -> str:
    """Remove the key remembered on this machine (the session's key stays); says what happened."""
    removed = key_sources.forget()
    if not removed:
        return "No key was remembered on this machine."
    return f"Forgot the key remembered in the {' and the '.join(removed)}."

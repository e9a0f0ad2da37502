"""Session configuration: defaults, precedence, sources, traits, key masking and validation."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import pytest
from traitlets import TraitError
from traitlets.config import Config

from mesh_magic.core import config as _config
from mesh_magic.core.config import MeshImg, configure, install_session, resolve, session
from mesh_magic.core.errors import InvalidOptionError
from mesh_magic.core.keys import ApiKey, mask_key
from mesh_magic.core.settings import DEFAULTS, SETTING_NAMES
from mesh_magic.server import OFFLINE_BASE_URL

KEY = "rsk_live_abcdefghijklmnop1a2b"


def test_defaults_with_empty_session_and_environment() -> None:
    settings = resolve(config=MeshImg(), environ={})
    for name in SETTING_NAMES:
        assert getattr(settings, name) == DEFAULTS[name], name
        assert settings.sources[name] == "default", name
    assert settings.api_key is None
    assert settings.sources["api_key"] == "not set"
    assert settings.base_url == "https://api.meshapi.ai"
    assert settings.model == "openai/gpt-image-1"
    assert settings.response_format is None  # the server's choice: not sent unless set
    assert settings.cache == "off"
    assert settings.api_root == "https://api.meshapi.ai/v1"


def test_the_key_is_not_a_trait() -> None:
    assert "api_key" not in MeshImg.class_trait_names()
    assert set(SETTING_NAMES) <= set(MeshImg.class_trait_names(config=True))


@pytest.mark.parametrize(
    ("name", "env_name", "env_value", "expected"),
    [
        ("base_url", "MESHAPI_BASE_URL", "https://env.example.com", "https://env.example.com"),
        ("cache", "MESHIMG_CACHE", "on", "on"),
        ("store_dir", "MESHIMG_STORE_DIR", "/tmp/env-store", "/tmp/env-store"),
    ],
)
def test_environment_layer(name: str, env_name: str, env_value: str, expected: str) -> None:
    settings = resolve(config=MeshImg(), environ={env_name: env_value})
    assert getattr(settings, name) == expected
    assert settings.sources[name] == f"env {env_name}"


@pytest.mark.parametrize(
    ("name", "env", "session_value", "call_value"),
    [
        (
            "base_url",
            {"MESHAPI_BASE_URL": "https://env.example.com"},
            "https://session.example.com",
            "https://call.example.com",
        ),
        ("cache", {"MESHIMG_CACHE": "on"}, "replay", "off"),
        ("store_dir", {"MESHIMG_STORE_DIR": "/tmp/env"}, "/tmp/session", "/tmp/call"),
    ],
)
def test_precedence_call_over_session_over_env(
    name: str, env: dict[str, str], session_value: str, call_value: str
) -> None:
    config = MeshImg()
    assert getattr(resolve(config=config, environ=env), name) == next(iter(env.values()))
    setattr(config, name, session_value)
    settings = resolve(config=config, environ=env)
    assert getattr(settings, name) == session_value
    assert settings.sources[name] == "session"
    settings = resolve({name: call_value}, config=config, environ=env)
    assert getattr(settings, name) == call_value
    assert settings.sources[name] == "call"


def test_precedence_for_plain_settings() -> None:
    config = MeshImg()
    config.model = "google/imagen-4"
    config.n = 2
    settings = resolve({"n": 3}, config=config, environ={})
    assert settings.model == "google/imagen-4"
    assert settings.sources["model"] == "session"
    assert settings.n == 3
    assert settings.sources["n"] == "call"
    assert settings.sources["size"] == "default"


def test_none_call_options_mean_not_given() -> None:
    config = MeshImg()
    config.n = 4
    settings = resolve({"n": None, "model": None}, config=config, environ={})
    assert settings.n == 4
    assert settings.sources["n"] == "session"


def test_key_precedence_and_sources() -> None:
    config = MeshImg()
    both = {"MESHAPI_API_KEY": "rsk_first_000000000001", "MESH_API_KEY": "rsk_second_00000000002"}
    settings = resolve(config=config, environ=both)
    assert settings.api_key is not None
    assert settings.api_key.reveal() == "rsk_first_000000000001"
    assert settings.sources["api_key"] == "env MESHAPI_API_KEY"

    settings = resolve(config=config, environ={"MESH_API_KEY": "rsk_second_00000000002"})
    assert settings.api_key is not None
    assert settings.api_key.reveal() == "rsk_second_00000000002"
    assert settings.sources["api_key"] == "env MESH_API_KEY"

    # A blank MESHAPI_API_KEY does not hide MESH_API_KEY.
    settings = resolve(config=config, environ={"MESHAPI_API_KEY": "  ", "MESH_API_KEY": "rsk_x_1234567890"})
    assert settings.api_key is not None and settings.api_key.reveal() == "rsk_x_1234567890"

    config.set_api_key("rsk_session_0000000003")
    settings = resolve(config=config, environ=both)
    assert settings.api_key is not None
    assert settings.api_key.reveal() == "rsk_session_0000000003"
    assert settings.sources["api_key"] == "session"

    settings = resolve({"api_key": "rsk_call_000000000004"}, config=config, environ=both)
    assert settings.api_key is not None
    assert settings.api_key.reveal() == "rsk_call_000000000004"
    assert settings.sources["api_key"] == "call"


def test_call_params_extend_session_params() -> None:
    config = MeshImg()
    config.params = {"seed": 1, "background": "transparent"}
    settings = resolve({"params": {"seed": 2, "watermark": False}}, config=config, environ={})
    assert dict(settings.params) == {"seed": 2, "background": "transparent", "watermark": False}


def test_traitlets_config_sets_traits_like_percent_config() -> None:
    cfg = Config()
    cfg.MeshImg.model = "google/imagen-4"
    cfg.MeshImg.n = 2
    cfg.MeshImg.quality = "high"
    config = MeshImg(config=cfg)
    settings = resolve(config=config, environ={})
    assert (settings.model, settings.n, settings.quality) == ("google/imagen-4", 2, "high")
    assert settings.sources["model"] == "session"


def test_enum_traits_reject_bad_values() -> None:
    config = MeshImg()
    with pytest.raises(TraitError):
        config.quality = "ultra"
    with pytest.raises(TraitError):
        config.cache = "sometimes"
    with pytest.raises(TraitError):
        config.response_format = "png"
    assert config.quality is None
    config.quality = "hd"
    assert config.quality == "hd"


@pytest.mark.parametrize(
    ("key", "masked"),
    [
        ("rsk_abcdefghijklmnop1a2b", "rsk_…1a2b"),
        ("sk-abcdefghijklmnop9z9z", "…9z9z"),
        ("rsk_short", "rsk_…"),  # too short to show a tail
        (None, "(not set)"),
        ("", "(not set)"),
    ],
)
def test_mask_key(key: str | None, masked: str) -> None:
    assert mask_key(key) == masked


def test_api_key_never_prints_the_key() -> None:
    key = ApiKey(KEY)
    for text in (repr(key), str(key), f"{key}", f"{key!r}", key.masked):
        assert KEY not in text
        assert "abcdefghijklmnop" not in text
    assert key.masked == "rsk_…1a2b"
    assert "rsk_…1a2b" in repr(key)
    assert key.reveal() == KEY
    assert key == ApiKey(KEY) and key != ApiKey(KEY + "x")
    assert hash(key) == hash(ApiKey(KEY))


def test_api_key_and_settings_cannot_be_pickled() -> None:
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(ApiKey(KEY))
    settings = resolve({"api_key": KEY}, config=MeshImg(), environ={})
    with pytest.raises(TypeError):
        pickle.dumps(settings)


def test_settings_and_config_reprs_hide_the_key() -> None:
    config = MeshImg()
    config.set_api_key(KEY)
    settings = resolve(config=config, environ={})
    assert KEY not in repr(settings)
    assert "rsk_…1a2b" in repr(settings)
    assert KEY not in repr(config.trait_values())
    assert KEY not in repr(config.session_values())
    assert KEY not in repr(config.api_key)


def test_set_api_key_strips_and_blank_clears() -> None:
    config = MeshImg()
    config.set_api_key(f"  {KEY}\n")
    assert config.api_key is not None and config.api_key.reveal() == KEY
    config.set_api_key("   ")
    assert config.api_key is None


def test_configure_api_key_warns_and_sets() -> None:
    with pytest.warns(UserWarning, match="notebook source") as record:
        configure(api_key=KEY)
    assert "--login" in str(record[0].message)
    assert KEY not in str(record[0].message)
    assert session().api_key is not None and session().api_key.reveal() == KEY


def test_configure_without_key_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        configure(model="google/imagen-4", n=2, size="square")
    assert session().model == "google/imagen-4"
    assert session().n == 2
    assert session().size == "1024x1024"  # normalised before it is stored


def test_configure_with_a_bad_value_changes_nothing() -> None:
    configure(n=2)
    with pytest.raises(InvalidOptionError, match="quality"):
        configure(model="google/imagen-4", n=3, quality="ultra")
    assert session().model is None
    assert session().n == 2
    assert session().quality is None
    with pytest.raises(InvalidOptionError, match="Unknown setting"):
        configure(modle="x")
    with pytest.raises(InvalidOptionError, match="n must"):
        configure(n=11)
    assert session().n == 2


def test_configure_none_unsets() -> None:
    configure(model="google/imagen-4")
    configure(model=None)
    assert session().model is None
    assert resolve(environ={}).sources["model"] == "default"


def test_reset_forgets_values_and_key() -> None:
    configure(model="google/imagen-4", cache="on")
    session().set_api_key(KEY)
    session().reset()
    assert session().session_values() == {}
    assert session().api_key is None


@pytest.mark.parametrize(
    ("base_url", "root"),
    [
        ("https://api.meshapi.ai", "https://api.meshapi.ai/v1"),
        ("https://api.meshapi.ai/", "https://api.meshapi.ai/v1"),
        ("https://api.meshapi.ai/v1", "https://api.meshapi.ai/v1"),
        ("https://api.meshapi.ai/v1/", "https://api.meshapi.ai/v1"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765/v1"),
        ("https://proxy.example.com/mesh/v1", "https://proxy.example.com/mesh/v1"),
    ],
)
def test_base_url_normalised_to_v1(base_url: str, root: str) -> None:
    assert resolve({"base_url": base_url}, config=MeshImg(), environ={}).api_root == root


@pytest.mark.parametrize("value", ["offline", "OFFLINE", " offline "])
def test_offline_base_url(value: str) -> None:
    settings = resolve(config=MeshImg(), environ={"MESHAPI_BASE_URL": value})
    assert settings.base_url == "offline"
    assert settings.offline
    assert settings.api_root == OFFLINE_BASE_URL + "/v1"
    assert not resolve({"base_url": "https://x.example"}, config=MeshImg(), environ={}).offline


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"base_url": "api.meshapi.ai"}, "https://"),
        ({"base_url": "ftp://api.meshapi.ai"}, "https://"),
        ({"model": "  "}, "model is empty"),
        ({"n": 0}, "n must"),
        ({"n": 11}, "n must"),
        ({"n": "three"}, "n must"),
        ({"n": True}, "n must"),
        ({"size": "huge"}, "size"),
        ({"quality": "ultra"}, "quality must be one of"),
        ({"response_format": "png"}, "response_format"),
        ({"output_format": "gif"}, "output_format"),
        ({"stream": "maybe"}, "stream"),
        ({"params": [1, 2]}, "params"),
        ({"timeout": "soon"}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": 11}, "max_retries"),
        ({"concurrency": 0}, "concurrency"),
        ({"display_max_px": 4}, "display_max_px"),
        ({"cache": "sometimes"}, "cache"),
        ({"colour": "red"}, "Unknown option colour"),
    ],
)
def test_resolve_rejects_bad_values(overrides: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidOptionError, match=match):
        resolve(overrides, config=MeshImg(), environ={})


def test_string_values_are_coerced() -> None:
    settings = resolve(
        {
            "n": "3",
            "stream": "yes",
            "quality": "HIGH",
            "timeout": "2.5",
            "cache": "On",
            "store_dir": "~/mesh-store",
        },
        config=MeshImg(),
        environ={},
    )
    assert settings.n == 3
    assert settings.stream is True
    assert settings.quality == "high"
    assert settings.timeout == 2.5
    assert settings.cache == "on"
    assert settings.store_dir == str(Path("~/mesh-store").expanduser())


def test_models_splits_comma_list() -> None:
    settings = resolve({"model": "a/b, c/d,,"}, config=MeshImg(), environ={})
    assert settings.models == ["a/b", "c/d"]


def test_install_session_keeps_values_set_before_the_extension_loaded() -> None:
    configure(model="google/imagen-4")
    session().set_api_key(KEY)
    new = MeshImg()
    new.n = 3
    assert install_session(new) is new
    assert session() is new
    assert new.model == "google/imagen-4"
    assert new.n == 3
    assert new.api_key is not None and new.api_key.reveal() == KEY
    _config._session = None  # the autouse fixture resets a fresh default session

"""The settings table: each Setting's check, the resolved Settings, WIRE_FIELDS, the README table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mesh_magic.core.constants import OFFLINE, OFFLINE_ROOT
from mesh_magic.core.errors import InvalidOptionError
from mesh_magic.core.keys import ApiKey
from mesh_magic.core.settings import (
    BY_NAME,
    DEFAULTS,
    SETTING_NAMES,
    SETTINGS,
    WIRE_FIELDS,
    Setting,
    Settings,
    flagged,
    settings_markdown,
    unknown_names,
    validate,
)

# One refused value per setting, with a piece of the message it must raise.
BAD_VALUES: dict[str, list[tuple[Any, str]]] = {
    "base_url": [
        ("ftp://api.example.test", "must start with https://"),
        ("api.example.test", "https://"),
        ("https://", "no usable host"),
        ("http://[::1", "no usable host"),
        ("http://127.0.0.1:70000", "port from 1 to 65535"),
        ("https://user:secret@api.example.test", "must not hold a user name or password"),
        ("https://api.example.test/v1?key=1", "only the API root"),
    ],
    "model": [("", "model is empty"), ("   ", "model is empty")],
    "n": [(0, "from 1 to 10"), (11, "from 1 to 10"), ("two", "whole number"), (True, "from 1 to 10")],
    "size": [
        ("huge", "not understood"),
        ("8x8", "out of range"),
        ("1024x123456", "not understood"),
        ("1024x99999", "out of range"),
    ],
    "quality": [("ultra", "quality must be one of")],
    "response_format": [("png", "response_format must be one of")],
    "output_format": [("gif", "output_format must be one of")],
    "stream": [("maybe", "stream must be true or false"), (2, "true or false")],
    "params": [([("seed", 1)], "params must be a dict"), ("seed=1", "params must be a dict")],
    "timeout": [(0, "between 0.1 and 3600"), ("soon", "number of seconds"), (float("nan"), "between")],
    "max_retries": [(-1, "from 0 to 10"), (11, "from 0 to 10"), (1.5, "whole number")],
    "max_cost": [(-1, "0 or more US dollars"), ("cheap", "amount in US dollars"), (True, "US dollars")],
    "budget": [("$-2", "0 or more"), ("lots", "amount in US dollars")],
    "max_retry_wait": [
        (-1, "between 0 and 3600"),
        ("soon", "number of seconds"),
        (True, "number of seconds"),
    ],
    "concurrency": [(0, "from 1 to 64"), (65, "from 1 to 64")],
    "display_max_px": [(8, "0 (embed full resolution) or 16-8192"), (9000, "from 0 to 8192")],
    "cache": [("sometimes", "cache must be one of")],
}
# store_dir is any path: its check only normalises (see test_store_dir_expands_the_home_folder).
NO_BAD_VALUE = {"store_dir"}


def test_every_setting_has_a_bad_value_case() -> None:
    assert set(BAD_VALUES) | NO_BAD_VALUE == set(SETTING_NAMES)


@pytest.mark.parametrize("name", SETTING_NAMES)
def test_each_check_accepts_its_default(name: str) -> None:
    setting = BY_NAME[name]
    assert setting.validate(setting.default) == setting.default


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [(name, value, message) for name, cases in BAD_VALUES.items() for value, message in cases],
)
def test_each_check_rejects_a_bad_value(name: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidOptionError, match=re.escape(message)):
        BY_NAME[name].validate(value)
    with pytest.raises(InvalidOptionError):
        validate({name: value})


@pytest.mark.parametrize(
    ("name", "value", "normalised"),
    [
        ("base_url", " https://api.example.test/ ", "https://api.example.test"),
        ("base_url", "OFFLINE", OFFLINE),
        ("model", "  m/x  ", "m/x"),
        ("n", "3", 3),
        ("size", "square", "1024x1024"),
        ("size", " 512 X 768 ", "512x768"),
        ("size", "", "auto"),
        ("quality", " HIGH ", "high"),
        ("output_format", "WebP", "webp"),
        ("stream", "yes", True),
        ("stream", "off", False),
        ("params", {"seed": 1}, {"seed": 1}),
        ("timeout", "2.5", 2.5),
        ("display_max_px", 0, 0),
        ("cache", "Replay", "replay"),
    ],
)
def test_checks_normalise(name: str, value: Any, normalised: Any) -> None:
    assert BY_NAME[name].validate(value) == normalised


def test_none_means_unset_for_every_setting() -> None:
    assert all(s.validate(None) is None for s in SETTINGS)


def test_store_dir_expands_the_home_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert BY_NAME["store_dir"].validate("~/imgs") == str(tmp_path / "imgs")
    assert BY_NAME["store_dir"].validate(Path("/a/b")) == "/a/b"


def test_params_check_copies_the_mapping() -> None:
    given = {"seed": 1}
    checked = BY_NAME["params"].validate(given)
    checked["seed"] = 2
    assert given == {"seed": 1}


def test_setting_names_kinds_and_class_access() -> None:
    assert [s.name for s in SETTINGS] == list(SETTING_NAMES)
    assert SETTING_NAMES[:3] == ("base_url", "model", "n")
    assert isinstance(Settings.model, Setting)
    assert BY_NAME["n"].kind is int and BY_NAME["timeout"].kind is float
    assert BY_NAME["output_format"].kind is str and BY_NAME["params"].kind is dict
    assert BY_NAME["quality"].choices == ("auto", "low", "medium", "high", "hd", "standard")
    assert {s.name for s in flagged()} >= {"model", "n", "size", "quality", "stream", "params"}
    assert "base_url" not in {s.name for s in flagged()}


def test_wire_fields() -> None:
    expected = {"prompt", "model", "n", "size", "quality", "response_format", "output_format", "stream"}
    assert set(WIRE_FIELDS) == expected
    assert "params" not in WIRE_FIELDS and "timeout" not in WIRE_FIELDS


def test_unknown_names() -> None:
    assert unknown_names(["model", "api_key", "colour", "aspect"]) == ["aspect", "colour"]
    assert unknown_names(["api_key"], extra=()) == ["api_key"]


# -- Settings --------------------------------------------------------------------------------


def make(**values: Any) -> Settings:
    sources = {name: "session" for name in values}
    return Settings(ApiKey("rsk_settings_test_key_1234"), values, sources)


def test_settings_fill_defaults_and_read_values() -> None:
    settings = make(n=2)
    assert settings.n == 2
    assert settings.model == DEFAULTS["model"]
    assert settings.values() == {**DEFAULTS, "n": 2}


def test_values_is_a_copy() -> None:
    settings = make()
    settings.values()["n"] = 9
    assert settings.n == 1


def test_replace_changes_values_and_marks_them_as_call() -> None:
    settings = make(n=2, size="512x512")
    changed = settings.replace(n=4, cache="on")
    assert (changed.n, changed.cache, changed.size) == (4, "on", "512x512")
    assert changed.sources["n"] == "call" and changed.sources["cache"] == "call"
    assert changed.sources["size"] == "session"
    assert changed.api_key == settings.api_key
    assert (settings.n, settings.cache) == (2, "off")  # the original is untouched
    assert changed != settings
    assert settings.replace() == settings


def test_is_set_follows_sources() -> None:
    settings = Settings(None, {"n": 3}, {"n": "call", "size": "default", "cache": "env MESHIMG_CACHE"})
    assert settings.is_set("n")
    assert settings.is_set("cache")
    assert not settings.is_set("size")
    assert not settings.is_set("model")  # no source at all reads as a default


@pytest.mark.parametrize(
    ("model", "models"),
    [
        ("m/a", ["m/a"]),
        ("m/a,m/b", ["m/a", "m/b"]),
        (" m/a , , m/b ,", ["m/a", "m/b"]),
        (",", []),
    ],
)
def test_models_splits_the_comma_list(model: str, models: list[str]) -> None:
    assert make(model=model).models == models


def test_api_root_and_offline() -> None:
    assert make(base_url="https://api.example.test").api_root == "https://api.example.test/v1"
    assert make(base_url="https://api.example.test/v1").api_root == "https://api.example.test/v1"
    offline = make(base_url=OFFLINE)
    assert offline.offline and offline.api_root == OFFLINE_ROOT + "/v1"
    assert not make().offline


def test_equality_includes_the_key_and_repr_hides_it() -> None:
    a = Settings(ApiKey("rsk_first_key_000000001111"), {}, {})
    b = Settings(ApiKey("rsk_other_key_000000002222"), {}, {})
    assert a == Settings(ApiKey("rsk_first_key_000000001111"), {}, {"n": "call"})
    assert a != b
    assert "rsk_first_key_000000001111" not in repr(a)
    assert "model='openai/gpt-image-1'" in repr(a)
    with pytest.raises(TypeError):
        hash(a)


# -- the README table ------------------------------------------------------------------------


def test_settings_markdown_has_a_row_per_setting() -> None:
    lines = settings_markdown().splitlines()
    assert lines[0] == "| setting | default | meaning | environment |"
    assert lines[1] == "|---|---|---|---|"
    rows = lines[2:]
    assert len(rows) == len(SETTINGS)
    for setting, row in zip(SETTINGS, rows, strict=True):
        assert row.startswith(f"| `{setting.name}` | ")
        assert row.count("|") >= 5
        if setting.env:
            assert row.endswith(f"| `{setting.env}` |")


def test_settings_markdown_defaults() -> None:
    rows = {row.split("`")[1]: row for row in settings_markdown().splitlines()[2:]}
    assert "| `1` |" in rows["n"]
    assert "| not sent |" in rows["output_format"]
    assert "| `180` |" in rows["timeout"]
    assert "| `{}` |" in rows["params"]
    assert "| per-user data folder |" in rows["store_dir"]
    assert rows["model"].endswith("| |")

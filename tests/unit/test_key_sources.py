"""Key sources after the session and the environment (SPEC 11): a Colab secret, a remembered key."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from mesh_magic.core import config as _config, key_sources
from mesh_magic.core.config import resolve
from mesh_magic.core.errors import InvalidOptionError
from mesh_magic.core.keys import ApiKey

COLAB_KEY = "rsk_colab_secret_key_0123456789"
KEPT_KEY = "rsk_remembered_key_9876543210"
ENV_KEY = "rsk_environment_key_5555555555"


def _source() -> tuple[ApiKey | None, str]:
    settings = resolve()
    return settings.api_key, settings.sources["api_key"]


# --- Colab ------------------------------------------------------------------------------


def test_a_shared_colab_secret_is_the_key(colab: Any) -> None:
    colab.share(COLAB_KEY)
    assert _source() == (ApiKey(COLAB_KEY), "colab secret")
    assert colab.calls == ["MESHAPI_API_KEY"]


@pytest.mark.parametrize("state", ["missing", "not shared"])
def test_a_missing_or_unshared_secret_is_skipped_quietly(
    colab: Any, state: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if state == "not shared":
        colab.share(COLAB_KEY)
        colab.unshare()
    assert _source() == (None, "not set")
    assert colab.calls == ["MESHAPI_API_KEY"], "Colab was asked"
    assert capsys.readouterr() == ("", ""), "nothing printed"


def test_outside_colab_the_module_is_never_asked(colab: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    colab.share(COLAB_KEY)
    monkeypatch.delenv(key_sources.COLAB_ENV)
    assert _source() == (None, "not set")
    assert "google.colab" not in __import__("sys").modules


def test_colab_secret_comes_after_session_and_environment(
    colab: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    colab.share(COLAB_KEY)
    monkeypatch.setenv("MESH_API_KEY", ENV_KEY)
    assert _source() == (ApiKey(ENV_KEY), "env MESH_API_KEY")
    _config.session().set_api_key("rsk_session_key_000000000000")
    assert _source()[1] == "session"
    assert colab.calls == [], "an earlier source won: Colab not asked"


def test_colab_is_asked_once_per_session_until_reset(colab: Any) -> None:
    for _ in range(3):
        assert _source() == (None, "not set")
    assert len(colab.calls) == 1, "one prompt for access, not one per call"
    colab.share(COLAB_KEY)  # shared after the first miss: --reset looks again
    _config.session().reset()
    assert _source() == (ApiKey(COLAB_KEY), "colab secret")


def test_colab_secret_wins_over_a_remembered_key(colab: Any) -> None:
    key_sources.remember(ApiKey(KEPT_KEY))
    colab.share(COLAB_KEY)
    assert _source()[1] == "colab secret"


# --- remembered: the file ---------------------------------------------------------------


def test_without_a_keyring_the_key_goes_to_a_file_only_its_owner_can_read(tmp_path: Path) -> None:
    assert key_sources.usable_keyring() is None, "the suite selects keyring's fail backend"
    place, path = key_sources.remember(ApiKey(KEPT_KEY))
    assert place == "file" and path == key_sources.key_file()
    assert path.is_relative_to(tmp_path), "XDG_CONFIG_HOME points into the test's tmp folder"
    assert path.parent.name == "mesh_magic"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text().strip() == KEPT_KEY
    assert [p.name for p in path.parent.iterdir()] == ["api_key"], "no temp file left behind"
    assert _source() == (ApiKey(KEPT_KEY), "file")


def test_a_loosened_key_file_is_made_owner_only_again() -> None:
    _, path = key_sources.remember(ApiKey(KEPT_KEY))
    assert path is not None
    os.chmod(path, 0o644)
    assert _source() == (ApiKey(KEPT_KEY), "file")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_forget_removes_the_file() -> None:
    key_sources.remember(ApiKey(KEPT_KEY))
    assert _source()[1] == "file"
    assert key_sources.forget() == ["file"]
    assert not key_sources.key_file().exists()
    assert _source() == (None, "not set")
    assert key_sources.forget() == []


def test_an_empty_or_unreadable_key_file_means_no_key() -> None:
    path = key_sources.key_file()
    path.parent.mkdir(parents=True)
    path.write_text("  \n")
    assert _source() == (None, "not set")
    path.unlink()
    path.mkdir()  # not a file at all
    key_sources.forget_lookups()
    assert _source() == (None, "not set")


def test_the_environment_wins_over_a_remembered_key(monkeypatch: pytest.MonkeyPatch) -> None:
    key_sources.remember(ApiKey(KEPT_KEY))
    monkeypatch.setenv("MESHAPI_API_KEY", ENV_KEY)
    assert _source() == (ApiKey(ENV_KEY), "env MESHAPI_API_KEY")


# --- remembered: the keyring ------------------------------------------------------------


def test_a_usable_keyring_is_preferred_to_the_file(file_keyring: Any, tmp_path: Path) -> None:
    assert key_sources.usable_keyring() is file_keyring.backend
    place, path = key_sources.remember(ApiKey(KEPT_KEY))
    assert (place, path) == ("keyring", None)
    assert file_keyring.stored() == KEPT_KEY
    assert file_keyring.path.is_relative_to(tmp_path)
    assert not key_sources.key_file().exists(), "no second copy in the file"
    assert _source() == (ApiKey(KEPT_KEY), "keyring")
    assert key_sources.forget() == ["keyring"]
    assert file_keyring.stored() is None
    assert _source() == (None, "not set")


def test_remembering_in_the_keyring_removes_an_older_file_copy(file_keyring: Any) -> None:
    import keyring
    from keyring.backends import fail

    keyring.set_keyring(fail.Keyring())
    assert key_sources.remember(ApiKey("rsk_old_key_in_the_file_00000"))[0] == "file"
    keyring.set_keyring(file_keyring.backend)
    assert key_sources.remember(ApiKey(KEPT_KEY))[0] == "keyring"
    assert not key_sources.key_file().exists()
    key_sources.forget()
    assert _source() == (None, "not set"), "forget leaves no older key to come back"


def test_a_keyring_that_refuses_falls_back_to_the_file(
    file_keyring: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyring.errors import PasswordSetError

    def refuse(*_: Any) -> None:
        raise PasswordSetError("the keyring is locked")

    monkeypatch.setattr(file_keyring.backend, "set_password", refuse)
    assert key_sources.remember(ApiKey(KEPT_KEY))[0] == "file"
    assert _source() == (ApiKey(KEPT_KEY), "file")


def test_a_keyring_that_fails_to_read_is_skipped(file_keyring: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from keyring.errors import KeyringLocked

    key_sources.remember(ApiKey(KEPT_KEY))

    def locked(*_: Any) -> None:
        raise KeyringLocked("locked")

    monkeypatch.setattr(file_keyring.backend, "get_password", locked)
    key_sources.forget_lookups()
    assert _source() == (None, "not set")


def test_no_keyring_library_means_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "keyring", None)  # import keyring -> ImportError
    assert key_sources.usable_keyring() is None
    assert key_sources.remember(ApiKey(KEPT_KEY))[0] == "file"


# --- the config layer -------------------------------------------------------------------


def test_remember_key_says_where_and_needs_a_key() -> None:
    with pytest.raises(InvalidOptionError, match="--login --remember"):
        _config.remember_key()
    _config.login(KEPT_KEY)
    where = _config.remember_key()
    assert where.startswith("in ") and "readable by you only" in where
    assert KEPT_KEY not in where
    assert _config.forget_key() == "Forgot the key remembered in the file."
    assert _config.forget_key() == "No key was remembered on this machine."


def test_remembering_looks_again_after_a_miss(colab: Any) -> None:
    assert _source() == (None, "not set")
    key_sources.remember(ApiKey(KEPT_KEY))
    assert _source() == (ApiKey(KEPT_KEY), "file"), "remember() forgets the earlier miss"

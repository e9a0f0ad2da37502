"""%meshimg_config --login --remember / --forget and the key's source, against the loopback server.

A key remembered in one session is what the next session (here: after --reset, which
is what a new kernel starts from) generates with; %meshimg_config names where it came from.
"""

from __future__ import annotations

import stat
from typing import Any

import pytest
from IPython.core.error import UsageError

import mesh_magic
from mesh_magic.core import config as _config, key_sources
from mesh_magic.render.tables import ConfigTable
from mesh_magic.server import MeshServer
from tests.support.servers import generations
from tests.support.shell import run


def key_row(shell: Any) -> tuple[str, str]:
    table = run(shell, "%meshimg_config")
    assert isinstance(table, ConfigTable)
    (row,) = [(value, source) for name, value, source in table.rows if name == "api_key"]
    return row


def _typed(monkeypatch: pytest.MonkeyPatch, key: str) -> list[str]:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return key

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    return prompts


def _new_session(server: MeshServer) -> None:
    # A new kernel starts with no session key; --reset also forgets earlier lookups.
    _config.session().reset()
    _config.configure(base_url=server.base_url)


def _generate_once(shell: Any, server: MeshServer) -> None:
    assert len(run(shell, "%%meshimg -s 64x64 --no-display\nfox")) == 1
    assert generations(server)[-1].headers["authorization"] == f"Bearer {server.api_key}"


def test_login_remember_keeps_the_key_for_the_next_session_in_a_file(
    shell: Any, server: MeshServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = server.api_key
    assert key is not None
    prompts = _typed(monkeypatch, key)
    _new_session(server)
    run(shell, "%meshimg_config --login --remember")
    assert len(prompts) == 1
    out = capsys.readouterr().out
    path = key_sources.key_file()
    assert "Key set for this session" in out and f"Key remembered in {path} (readable by you only)" in out
    assert key not in out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key_row(shell) == (f"rsk_…{key[-4:]}", "session")

    _new_session(server)
    assert key_row(shell) == (f"rsk_…{key[-4:]}", "file")
    _generate_once(shell, server)

    run(shell, "%meshimg_config --forget")
    assert "Forgot the key remembered in the file." in capsys.readouterr().out
    assert not path.exists()
    assert key_row(shell) == ("(not set)", "not set")


def test_login_remember_uses_a_usable_keyring(
    shell: Any,
    server: MeshServer,
    file_keyring: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = server.api_key
    assert key is not None
    _typed(monkeypatch, key)
    run(shell, "%meshimg_config --login --remember")
    assert "Key remembered in the OS keyring for later sessions." in capsys.readouterr().out
    assert file_keyring.stored() == key
    assert not key_sources.key_file().exists()

    _new_session(server)
    assert key_row(shell) == (f"rsk_…{key[-4:]}", "keyring")
    _generate_once(shell, server)
    run(shell, "%meshimg_config --forget")
    assert "Forgot the key remembered in the keyring." in capsys.readouterr().out
    assert file_keyring.stored() is None


def test_remember_alone_keeps_the_session_key(
    shell: Any, server: MeshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run(shell, "%meshimg_config --remember")  # the server fixture set a session key
    assert "Key remembered in" in capsys.readouterr().out
    assert key_sources.key_file().read_text().strip() == server.api_key


def test_remember_without_a_session_key_says_what_to_do(shell: Any) -> None:
    with pytest.raises(
        UsageError, match=r"No session key to remember: use %meshimg_config --login --remember"
    ):
        run(shell, "%meshimg_config --remember")
    assert not key_sources.key_file().exists()


def test_forget_with_nothing_remembered_and_keeps_the_session_key(
    shell: Any, server: MeshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run(shell, "%meshimg_config --forget")
    assert "No key was remembered on this machine." in capsys.readouterr().out
    assert key_row(shell)[1] == "session", "--forget leaves this session's key alone"


def test_a_key_that_cannot_be_written_stays_for_the_session(
    shell: Any, server: MeshServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the config folder would be")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocked))
    with pytest.raises(UsageError, match="Could not remember the key .*kept for this session only"):
        run(shell, "%meshimg_config --remember")
    assert key_row(shell)[1] == "session"


def test_the_help_lists_the_key_flags(shell: Any) -> None:
    doc = shell.find_line_magic("meshimg_config").__doc__
    assert "--remember" in doc and "--forget" in doc and "--login" in doc


def test_python_api_login_remember_and_forget_key(
    server: MeshServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = server.api_key
    assert key is not None
    _typed(monkeypatch, key)
    _new_session(server)
    mesh_magic.login(remember=True)
    assert "Key remembered in" in capsys.readouterr().out
    _new_session(server)
    assert _config.resolve().sources["api_key"] == "file"
    assert len(mesh_magic.generate("a fox", size="64x64")) == 1
    mesh_magic.forget_key()
    assert "Forgot the key" in capsys.readouterr().out
    assert _config.resolve().sources["api_key"] == "not set"

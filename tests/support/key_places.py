"""Stand-ins for the places a key is kept outside the session: Colab's secrets, a keyring, a file.

Fixtures:
- `colab`: a runtime that looks like Colab (COLAB_RELEASE_TAG set, the stand-in
  `google.colab` of tests/support/colab on sys.path; `google/` there is a namespace
  package, like the real one). `colab.share(value)`, `colab.unshare()`, `colab.calls`.
- `file_keyring`: keyrings.alt's PlaintextKeyring (a file-based keyring backend) in
  this test's XDG data folder, selected for this process; `.path` is its file.

The suite-wide `clean_environment` fixture already points the per-user config and
data folders at tmp paths and selects keyring's "no backend" Keyring, so no test
touches the real user's keyring or config folder.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mesh_magic.core import key_sources

STANDIN = Path(__file__).resolve().parent / "colab"
SECRETS_ENV = "MESH_TEST_COLAB_SECRETS"
UNSHARED_ENV = "MESH_TEST_COLAB_UNSHARED"


@dataclass
class Colab:
    monkeypatch: pytest.MonkeyPatch

    def share(self, value: str, name: str = key_sources.COLAB_SECRET) -> None:
        self.monkeypatch.setenv(SECRETS_ENV, json.dumps({name: value}))
        self.monkeypatch.delenv(UNSHARED_ENV, raising=False)
        key_sources.forget_lookups()

    def unshare(self, name: str = key_sources.COLAB_SECRET) -> None:
        self.monkeypatch.setenv(UNSHARED_ENV, name)
        key_sources.forget_lookups()

    @property
    def calls(self) -> list[str]:
        from google.colab import userdata  # type: ignore[import-not-found]

        return list(userdata.calls)


def colab_environment(secrets: dict[str, str], unshared: str = "") -> dict[str, str]:
    """Environment for a kernel that should look like a Colab runtime (PYTHONPATH extended)."""
    import os

    path = os.pathsep.join(p for p in (str(STANDIN), os.environ.get("PYTHONPATH", "")) if p)
    return {
        key_sources.COLAB_ENV: "release-colab-standin",
        "PYTHONPATH": path,
        SECRETS_ENV: json.dumps(secrets),
        UNSHARED_ENV: unshared,
    }


def _drop_standin() -> None:
    for name in [n for n in sys.modules if n == "google.colab" or n.startswith("google.colab.")]:
        del sys.modules[name]


@pytest.fixture
def colab(monkeypatch: pytest.MonkeyPatch) -> Iterator[Colab]:
    monkeypatch.setenv(key_sources.COLAB_ENV, "release-colab-standin")
    monkeypatch.syspath_prepend(str(STANDIN))
    _drop_standin()
    key_sources.forget_lookups()
    yield Colab(monkeypatch)
    _drop_standin()
    key_sources.forget_lookups()


@dataclass
class FileKeyring:
    backend: Any

    @property
    def path(self) -> Path:
        return Path(self.backend.file_path)

    def stored(self) -> str | None:
        value: str | None = self.backend.get_password(
            key_sources.KEYRING_SERVICE, key_sources.KEYRING_USERNAME
        )
        return value


@pytest.fixture
def file_keyring(clean_environment: Path) -> Iterator[FileKeyring]:
    import keyring
    from keyring.backends import fail
    from keyrings.alt.file import PlaintextKeyring

    backend = PlaintextKeyring()  # its file is under XDG_DATA_HOME: this test's tmp folder
    keyring.set_keyring(backend)
    key_sources.forget_lookups()
    yield FileKeyring(backend)
    keyring.set_keyring(fail.Keyring())
    key_sources.forget_lookups()

"""Keys kept outside the session and the environment: a Colab secret, and a key remembered here.

SPEC 11: after the session and `MESHAPI_API_KEY` / `MESH_API_KEY` come, first found
wins, a Colab secret named `MESHAPI_API_KEY` (only inside Colab; a missing or
unshared secret is skipped quietly), then the key `%meshimg_config --login --remember`
kept on this machine: in the OS keyring when the `keyring` library has a usable
backend, else in a file only its owner can read in the per-user config folder.

Lookups are kept for the process (Colab asks the person to grant access, an OS
keyring may prompt to unlock), until `forget_lookups()`: `--login`, `--remember`,
`--forget` and `--reset` call it. Nothing here prints or logs a key.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import Any

from .files import atomic_write
from .keys import ApiKey, optional_key

COLAB_SECRET = "MESHAPI_API_KEY"
# Colab sets this in every runtime; its kernel also imports google.colab at start-up.
COLAB_ENV = "COLAB_RELEASE_TAG"
KEYRING_SERVICE = "mesh_magic"
KEYRING_USERNAME = "MESHAPI_API_KEY"
KEY_FILE_NAME = "api_key"

COLAB = "colab secret"
KEYRING = "keyring"
FILE = "file"
NOT_SET = "not set"

_lock = threading.Lock()
_found: tuple[ApiKey | None, str] | None = None


def _as_key(value: object, where: str = "The remembered key") -> ApiKey | None:
    return optional_key(value, where)


# -- Colab ----------------------------------------------------------------------------


def in_colab() -> bool:
    return "google.colab" in sys.modules or bool(os.environ.get(COLAB_ENV))


def colab_secret() -> ApiKey | None:
    """The Colab secret MESHAPI_API_KEY, or None (not in Colab, missing, not shared)."""
    if not in_colab():
        return None
    try:
        from google.colab import userdata  # type: ignore[import-not-found, unused-ignore]

        value = userdata.get(COLAB_SECRET)
    # SecretNotFoundError, NotebookAccessError (not shared with this notebook), a timeout
    # waiting for the page, or no google.colab at all: all mean "no key here", quietly.
    except Exception:  # noqa: BLE001
        return None
    return _as_key(value, f"The Colab secret {COLAB_SECRET}")


# -- the OS keyring -------------------------------------------------------------------


def usable_keyring() -> Any | None:
    """keyring's backend when the library is installed and has a usable one (priority > 0)."""
    try:
        import keyring
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
        # fail.Keyring (no backend found) has priority 0 and null.Keyring -1.
        return backend if float(backend.priority) > 0 else None
    except Exception:  # noqa: BLE001 - a broken keyring configuration means "no keyring"
        return None


def _keyring_key() -> ApiKey | None:
    backend = usable_keyring()
    if backend is None:
        return None
    try:
        value = backend.get_password(KEYRING_SERVICE, KEYRING_USERNAME)
    except Exception:  # noqa: BLE001 - a locked or refusing keyring is skipped like a missing key
        return None
    return _as_key(value, "The key in the OS keyring")  # a broken key is refused, not skipped


# -- the private file -----------------------------------------------------------------


def key_file() -> Path:
    """Where a remembered key lives when no keyring is usable (per-user config folder)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("mesh_magic", appauthor=False)) / KEY_FILE_NAME


def _file_key() -> ApiKey | None:
    path = key_file()
    try:
        if os.name == "posix" and path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)  # loosened by hand or by a copy: owner only again
        return _as_key(path.read_text(encoding="utf-8"), f"The key remembered in {path}")
    except (OSError, UnicodeDecodeError):
        return None


def _write_file(key: ApiKey) -> Path:
    path = key_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(path, (key.reveal() + "\n").encode("utf-8"), mode=0o600)
    return path


# -- lookup, remember, forget ---------------------------------------------------------


def remembered_key() -> tuple[ApiKey | None, str]:
    """The key remembered on this machine and where: ("keyring" | "file"), or (None, "not set")."""
    key = _keyring_key()
    if key is not None:
        return key, KEYRING
    key = _file_key()
    return (key, FILE) if key is not None else (None, NOT_SET)


def stored_key() -> tuple[ApiKey | None, str]:
    """The Colab secret, else the remembered key, with its source; looked up once per process."""
    global _found
    with _lock:
        if _found is None:
            secret = colab_secret()
            _found = (secret, COLAB) if secret is not None else remembered_key()
        return _found


def forget_lookups() -> None:
    """Look again next time (a secret was shared, a key remembered or forgotten)."""
    global _found
    with _lock:
        _found = None


def remember(key: ApiKey) -> tuple[str, Path | None]:
    """Keep `key` on this machine: ("keyring", None), or ("file", its path) when no keyring works."""
    backend = usable_keyring()
    try:
        if backend is not None:
            try:
                backend.set_password(KEYRING_SERVICE, KEYRING_USERNAME, key.reveal())
            except Exception:  # noqa: BLE001 - e.g. a locked keyring: the file still works
                pass
            else:
                # An older copy in the file would outlive a later --forget of the keyring's.
                with contextlib.suppress(FileNotFoundError):
                    key_file().unlink()
                return KEYRING, None
        return FILE, _write_file(key)
    finally:
        forget_lookups()


def forget() -> list[str]:
    """Remove the remembered key from the keyring and the file; the places it was in."""
    removed: list[str] = []
    backend = usable_keyring()
    if backend is not None:
        with contextlib.suppress(Exception):
            if backend.get_password(KEYRING_SERVICE, KEYRING_USERNAME) is not None:
                backend.delete_password(KEYRING_SERVICE, KEYRING_USERNAME)
                removed.append(KEYRING)
    with contextlib.suppress(FileNotFoundError):
        key_file().unlink()
        removed.append(FILE)
    forget_lookups()
    return removed

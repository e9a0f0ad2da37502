"""A stand-in for `google.colab.userdata`: `get(name)` answers as Colab's does.

Colab's real module asks the page for the secret and raises `SecretNotFoundError`
when there is none, `NotebookAccessError` when it is not shared with this notebook.
Here the secrets come from the environment, so a test (or a kernel it starts) sets
them: MESH_TEST_COLAB_SECRETS is a JSON object {name: value}; the names listed in
MESH_TEST_COLAB_UNSHARED (comma-separated) exist but are not shared. Each call is
recorded in `calls`, so a test can tell whether the module was asked at all.
"""

from __future__ import annotations

import json
import os

calls: list[str] = []


class NotebookAccessError(Exception):
    def __init__(self) -> None:
        super().__init__("Notebook does not have access to secret")


class SecretNotFoundError(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(f"Secret {key} does not exist.")


def get(key: str) -> str:
    calls.append(key)
    secrets = json.loads(os.environ.get("MESH_TEST_COLAB_SECRETS", "{}"))
    if key not in secrets:
        raise SecretNotFoundError(key)
    if key in os.environ.get("MESH_TEST_COLAB_UNSHARED", "").split(","):
        raise NotebookAccessError()
    return str(secrets[key])

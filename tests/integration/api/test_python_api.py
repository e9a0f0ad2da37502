"""The Python API (generate, agenerate, models, configure, login) and the offline backend."""

from __future__ import annotations

import asyncio
import json
import warnings
from pathlib import Path
from typing import Any

import pytest

import mesh_magic
from mesh_magic import (
    AuthenticationError,
    ImageResult,
    InvalidOptionError,
    MeshImg,
    ServerError,
    configure,
)
from mesh_magic.core import config as _config
from mesh_magic.server import Fault, MeshServer
from tests.support.mock_api import API_BASE
from tests.support.servers import SINGLE_IMAGE_MODEL, generations


def test_generate(server: MeshServer) -> None:
    result = mesh_magic.generate(
        "a red fox",
        model="google/imagen-4",
        n=2,
        size="128x128",
        quality="high",
        output_format="webp",
        params={"seed": 3},
    )
    assert isinstance(result, ImageResult)
    (request,) = generations(server)
    assert request.json == {
        "prompt": "a red fox",
        "model": "google/imagen-4",
        "n": 2,
        "size": "128x128",
        "quality": "high",
        "output_format": "webp",
        "seed": 3,
    }  # only what was set: no response_format (the server's choice, here url links)
    assert len(result) == 2
    assert all(im.mime_type == "image/webp" and im.width == 128 for im in result)
    assert result.request_ids == [request.headers.get("x-request-id") or result[0].request_id]
    assert result.usage.get("images") == 2


def test_generate_several_models_and_save(server: MeshServer, tmp_path: Path) -> None:
    result = mesh_magic.generate(
        "a red fox",
        model="google/imagen-4,black-forest-labs/flux-schnell",
        size="96x96",
        save=tmp_path / "out",
    )
    assert result.rows == [("a red fox", "google/imagen-4"), ("a red fox", "black-forest-labs/flux-schnell")]
    assert len(list((tmp_path / "out").glob("*.png"))) == 2
    assert len(list((tmp_path / "out").glob("*.json"))) == 2


def test_generate_bad_options_send_nothing(server: MeshServer) -> None:
    with pytest.raises(InvalidOptionError, match="n must"):
        mesh_magic.generate("fox", n=0)
    with pytest.raises(InvalidOptionError, match="Unknown option"):
        mesh_magic.generate("fox", colour="red")
    with pytest.raises(InvalidOptionError, match="prompt is empty"):
        mesh_magic.generate("   ")
    with pytest.raises(InvalidOptionError, match="prompt must be a string"):
        mesh_magic.generate(42)  # type: ignore[arg-type]
    assert server.requests == []


def test_generate_total_failure_raises_and_partial_failure_returns(server: MeshServer) -> None:
    server.add_fault(Fault(kind="status", status=401))
    with pytest.raises(AuthenticationError):
        mesh_magic.generate("fox", size="96x96")
    server.add_fault(Fault(kind="status", status=500, model="google/imagen-4"))
    mixed = mesh_magic.generate("fox", model="google/imagen-4,black-forest-labs/flux-schnell", size="96x96")
    assert [im.model for im in mixed] == ["black-forest-labs/flux-schnell"]
    assert isinstance(mixed.errors[0].error, ServerError)
    assert not mixed.ok


def test_agenerate(server: MeshServer) -> None:
    async def main() -> list[ImageResult]:
        return list(
            await asyncio.gather(
                mesh_magic.agenerate("a red fox", size="96x96"),
                mesh_magic.agenerate("a blue whale", size="96x96", model="google/imagen-4"),
            )
        )

    fox, whale = asyncio.run(main())
    assert fox[0].prompt == "a red fox" and whale[0].model == "google/imagen-4"
    assert sorted(r.json["prompt"] for r in generations(server)) == ["a blue whale", "a red fox"]


def test_agenerate_raises_like_generate(server: MeshServer) -> None:
    server.add_fault(Fault(kind="status", status=401))
    with pytest.raises(AuthenticationError):
        asyncio.run(mesh_magic.agenerate("fox", size="96x96"))
    with pytest.raises(InvalidOptionError):
        asyncio.run(mesh_magic.agenerate("fox", size="nope"))


def test_models(server: MeshServer) -> None:
    found = mesh_magic.models()
    ids = [m["id"] for m in found]
    assert ids == sorted(ids)
    assert "openai/gpt-image-1" in ids and "openai/gpt-4o-mini" not in ids
    gpt = next(m for m in found if m["id"] == "openai/gpt-image-1")
    assert gpt["pricing"]["image_output_usd_per_image"] == "0.04"  # a string, as the SDK types it
    assert [m["id"] for m in mesh_magic.models("imagen")] == ["google/imagen-4"]
    assert all(r.query == "type=image" for r in server.requests)


def test_configure_returns_the_session_and_applies(server: MeshServer) -> None:
    config = configure(model="google/imagen-4", size="96x96", params={"seed": 9})
    assert isinstance(config, MeshImg) and config is _config.session()
    mesh_magic.generate("fox")
    body = generations(server)[0].json
    assert (body["model"], body["size"], body["seed"]) == ("google/imagen-4", "96x96", 9)
    mesh_magic.generate("fox", params={"style": "vivid"})  # call params add to the session's
    body = generations(server)[1].json
    assert (body["seed"], body["style"]) == (9, "vivid")


def test_login(server: MeshServer, monkeypatch: pytest.MonkeyPatch) -> None:
    _config.session().set_api_key(None)
    with pytest.raises(AuthenticationError):
        mesh_magic.generate("fox", size="96x96")
    monkeypatch.setattr("getpass.getpass", lambda prompt="": server.api_key)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mesh_magic.login()
    assert len(mesh_magic.generate("fox", size="96x96")) == 1
    mesh_magic.login("rsk_other_key_0000000000")
    assert _config.session().api_key is not None
    assert _config.session().api_key.reveal() == "rsk_other_key_0000000000"
    with pytest.raises(InvalidOptionError, match="No key entered"):
        mesh_magic.login("  ")
    assert _config.session().api_key.reveal() == "rsk_other_key_0000000000"


def test_env_configuration(meshapi_env: MeshServer) -> None:
    # Only environment variables: what a notebook run under CI sees.
    result = mesh_magic.generate("fox", size="96x96")
    assert len(result) == 1
    sent = [r for r in meshapi_env.requests if r.path == "/v1/images/generations"]
    assert sent[0].headers["authorization"] == f"Bearer {meshapi_env.api_key}"
    assert _config.resolve().sources["base_url"] == "env MESHAPI_BASE_URL"


def test_concurrency_is_bounded(server: MeshServer) -> None:
    server.latency = 0.2
    configure(concurrency=2)
    from mesh_magic.core.generate import plan, run

    result = run(plan([f"prompt {i}" for i in range(5)], {"size": "64x64"}))
    assert len(result) == 5
    assert server.max_in_flight == 2


# -- the offline backend -----------------------------------------------------------------------


def test_offline_backend_needs_no_key_and_no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_sockets(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the offline backend must not open sockets")

    configure(base_url="offline")
    assert _config.resolve().api_key is None
    monkeypatch.setattr(socket.socket, "connect", no_sockets)
    result = mesh_magic.generate(
        "a red fox", model="google/imagen-4", n=2, size="128x128", params={"seed": 1}
    )
    assert len(result) == 2
    assert result[0].to_pil().size == (128, 128)
    again = mesh_magic.generate("a red fox", model="google/imagen-4", n=2, size="128x128", params={"seed": 1})
    assert [im.data for im in again] == [im.data for im in result]  # deterministic per seed
    assert "google/imagen-4" in [m["id"] for m in mesh_magic.models()]


def test_offline_url_and_data_uri_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHAPI_BASE_URL", "offline")
    url = mesh_magic.generate(
        "fox", model="black-forest-labs/flux-schnell", size="96x96", response_format="url"
    )
    assert url[0].source == "url" and url[0].width == 96
    data = mesh_magic.generate("fox", model="meshapi/data-uri-preview", size="96x96", response_format="url")
    assert data[0].source == "data_uri"


def test_offline_magic(shell: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHAPI_BASE_URL", "offline")
    result = shell.run_cell("%%meshimg -s 96x96 --no-display\nan offline fox").result
    assert len(result) == 1
    assert result[0].path is not None
    meta = json.loads(result[0].path.with_suffix(".json").read_text())
    assert meta["base_url"] == "offline"
    table = shell.run_cell("%meshimg_config").result
    assert ("base_url", "offline", "env MESHAPI_BASE_URL") in table.rows


def test_fan_out_keeps_usage(server: Any) -> None:
    result = mesh_magic.generate("two foxes", model=SINGLE_IMAGE_MODEL, n=2, size="64x64")
    assert len(result) == 2
    assert result.usage.get("images") == 2, result.usage


def test_invalid_option_error_is_still_a_value_error() -> None:
    # Option errors stay ValueErrors, raised before any request.
    with pytest.raises(InvalidOptionError):
        mesh_magic.generate("", base_url=API_BASE)

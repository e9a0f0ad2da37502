"""Image edits and image inputs through the Python API, over loopback (SPEC 8).

Each operation, each kind of source, each refusal before sending, lineage in the
sidecars, the cache keyed on the sources, and the key never sent to an image host.
`meshapi/data-uri-preview` can do every operation on the test server; dall-e-3 none.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import mesh_magic
from mesh_magic import InvalidOptionError, configure
from mesh_magic.core.edits import EDIT_TIMEOUT, CapabilityError
from mesh_magic.core.generate import plan
from mesh_magic.server import MeshServer
from tests.support.images import make_image

EVERYTHING = "meshapi/data-uri-preview"
EDITS = "/v1/images/edits"


def edits(server: MeshServer) -> list[Any]:
    return [r for r in server.requests if r.path == EDITS]


def sent(server: MeshServer) -> list[Any]:
    return [r for r in server.requests if r.method == "POST"]


@pytest.fixture
def source(server: MeshServer) -> mesh_magic.GeneratedImage:
    (image,) = mesh_magic.generate("a red fox in fresh snow", model=EVERYTHING, size="256x256")
    server.reset()
    return image


def pil(image: mesh_magic.GeneratedImage) -> Image.Image:
    return image.to_pil()


def test_each_operation_does_what_it_says(server: MeshServer, source: mesh_magic.GeneratedImage) -> None:
    edited = source.edit("the sky at dusk", model=EVERYTHING)[0]
    assert edited.size == "256x256" and edited.data != source.data
    upscaled = source.upscale(model=EVERYTHING)[0]
    assert (upscaled.width, upscaled.height) == (512, 512)
    assert source.upscale(4, model=EVERYTHING)[0].width == 1024
    cutout = pil(source.remove_background(model=EVERYTHING)[0])
    assert cutout.mode == "RGBA" and cutout.getextrema()[3][0] == 0  # some pixels fully transparent
    wider = source.outpaint("more snowy forest", model=EVERYTHING)[0]
    assert wider.width > 256 and wider.height > 256
    reframed = source.reframe("16:9", model=EVERYTHING)[0]
    assert abs(reframed.width / reframed.height - 16 / 9) < 0.02
    inpainted = source.inpaint("a full moon", region="0,0,128,128", model=EVERYTHING)[0]
    before, after = pil(source).convert("RGB"), pil(inpainted).convert("RGB")
    assert before.getpixel((200, 200)) == after.getpixel((200, 200))  # outside the region: kept
    assert before.crop((0, 0, 128, 128)).tobytes() != after.crop((0, 0, 128, 128)).tobytes()
    mixed = mesh_magic.edit(source, "both at once", operation="mix", references=[upscaled], model=EVERYTHING)[
        0
    ]
    assert mixed.operation == "mix" and len(mixed.parents) == 2
    bodies = [r.json for r in edits(server)]
    assert [b["operation"] for b in bodies] == [
        "edit",
        "upscale",
        "upscale",
        "remove_background",
        "outpaint",
        "reframe",
        "inpaint",
        "mix",
    ]
    assert all(b["image"].startswith("data:image/png;base64,") for b in bodies)
    assert bodies[6]["mask"].startswith("data:image/png;base64,")
    assert bodies[2]["upscale_factor"] == "4" and bodies[5]["aspect_ratio"] == "16:9"
    assert "prompt" not in bodies[1]  # upscale needs none: nothing empty is sent


def test_the_edit_body_is_the_sdks(server: MeshServer, source: mesh_magic.GeneratedImage) -> None:
    configure(quality="high", output_format="webp")  # session values that edits do not take
    source.edit("warmer light", model=EVERYTHING, n=2, size="256x256")
    (body,) = [r.json for r in edits(server)]
    assert set(body) == {"model", "image", "operation", "prompt", "n", "size"}
    with pytest.raises(InvalidOptionError, match="quality do"):
        source.edit("warmer light", model=EVERYTHING, quality="high")  # asked for in the call


def png_file(tmp_path: Path, name: str = "photo.png", size: tuple[int, int] = (64, 48)) -> Path:
    path = tmp_path / name
    path.write_bytes(make_image(*size))
    return path


def test_every_kind_of_source(
    server: MeshServer, source: mesh_magic.GeneratedImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = png_file(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    data_uri = "data:image/png;base64," + base64.b64encode(make_image(40, 30)).decode()
    pil_image = Image.new("RGB", (50, 40), (10, 200, 30))
    result = mesh_magic.ImageResult([source])
    for value, size in [
        (source, "256x256"),
        (result, "256x256"),
        (pil_image, "50x40"),
        (path.read_bytes(), "64x48"),
        (path, "64x48"),
        (str(path), "64x48"),
        ("~/photo.png", "64x48"),
        (data_uri, "40x30"),
    ]:
        out = mesh_magic.edit(value, operation="upscale", model=EVERYTHING)[0]
        assert out.parents[0].size == size, value


def test_an_https_or_loopback_url_is_fetched_without_the_key(
    server: MeshServer, source: mesh_magic.GeneratedImage
) -> None:
    linked = mesh_magic.generate("a link", model="google/imagen-4", size="96x96", response_format="url")
    (request,) = [r for r in server.requests if r.path.startswith("/v1/files/")]
    url = f"{server.base_url}{request.path}"
    server.reset()
    out = mesh_magic.edit(url, operation="upscale", model=EVERYTHING)[0]
    assert out.width == 192 and out.parents[0].sha256 == hashlib.sha256(linked[0].data).hexdigest()
    (download,) = [r for r in server.requests if r.path.startswith("/v1/files/")]
    assert "authorization" not in download.headers  # the image host never sees the key
    assert edits(server)[0].headers["authorization"] == f"Bearer {server.api_key}"
    with pytest.raises(InvalidOptionError, match="must be https://"):
        mesh_magic.edit("http://images.example.com/cat.png", operation="upscale", model=EVERYTHING)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda s, t: mesh_magic.edit(t / "missing.png", operation="upscale", model=EVERYTHING),
            "does not exist",
        ),
        (
            lambda s, t: mesh_magic.edit(b"not an image at all", operation="upscale", model=EVERYTHING),
            "not an image",
        ),
        (lambda s, t: mesh_magic.edit(s, "", model=EVERYTHING), "edit needs a prompt"),
        (lambda s, t: mesh_magic.edit(s, "x", operation="paint", model=EVERYTHING), "Unknown operation"),
        (lambda s, t: mesh_magic.edit(s, "x", operation="mix", model=EVERYTHING), "two or more"),
        (lambda s, t: mesh_magic.edit(s, operation="inpaint", model=EVERYTHING), "--mask SRC"),
        (lambda s, t: s.inpaint("x", region="200,200,100,100", model=EVERYTHING), "reaches past"),
        (lambda s, t: s.inpaint("x", region="1,2,3", model=EVERYTHING), "not X,Y,W,H"),
        (lambda s, t: s.inpaint("x", mask=make_image(10, 10), model=EVERYTHING), "must be the same size"),
        (lambda s, t: mesh_magic.edit(s, operation="reframe", model=EVERYTHING), "reframe needs"),
        (lambda s, t: s.upscale(model="openai/dall-e-3"), "cannot upscale"),
        (
            lambda s, t: mesh_magic.generate("x", references=[s], model="openai/dall-e-3"),
            "cannot take reference images",
        ),
    ],
)
def test_refusals_send_nothing(
    server: MeshServer, source: mesh_magic.GeneratedImage, tmp_path: Path, call: Any, message: str
) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        call(source, tmp_path)
    assert sent(server) == []


def test_a_capability_refusal_names_models_that_can_cheapest_first(
    server: MeshServer, source: mesh_magic.GeneratedImage
) -> None:
    with pytest.raises(CapabilityError) as info:
        source.remove_background(model="google/imagen-4")
    text = str(info.value)
    assert "stability/sd-3.5-large ($0.065), meshapi/data-uri-preview (price unknown)" in text


def test_an_image_over_25_mb_is_refused_unread(server: MeshServer, tmp_path: Path) -> None:
    big = tmp_path / "huge.png"
    with big.open("wb") as handle:
        handle.truncate(26 * 1024 * 1024)
    with pytest.raises(InvalidOptionError, match="over the 25 MB"):
        mesh_magic.edit(big, operation="upscale", model=EVERYTHING)
    assert sent(server) == []


def test_lineage_in_sidecars_and_on_the_image(
    server: MeshServer, source: mesh_magic.GeneratedImage, tmp_path: Path
) -> None:
    outside = png_file(tmp_path, "holiday.png")
    (edited,) = mesh_magic.edit(outside, "a sunset", model=EVERYTHING)
    parent = edited.parents[0]
    assert edited.operation == "edit" and parent.label == "holiday.png"
    assert parent.path is not None and Path(parent.path).read_bytes() == outside.read_bytes()
    assert edited.path is not None
    sidecar = json.loads(edited.path.with_suffix(".json").read_text())
    assert sidecar["operation"] == "edit"
    assert sidecar["parents"][0]["sha256"] == parent.sha256 and sidecar["parents"][0]["path"] == parent.path
    assert "data:image" not in json.dumps(sidecar)  # sources are recorded by hash, not bytes
    (second,) = edited.upscale(model=EVERYTHING)
    assert second.parents[0].path == str(edited.path)  # a stored image is its own parent file
    (back,) = [im for im in mesh_magic.history(5) if im.operation == "upscale"]
    assert back.parents[0].sha256 == hashlib.sha256(edited.data).hexdigest()


def test_the_cache_keys_edits_by_their_sources(server: MeshServer, source: mesh_magic.GeneratedImage) -> None:
    configure(cache="on")
    first = source.upscale(model=EVERYTHING)
    again = source.upscale(model=EVERYTHING)
    assert len(edits(server)) == 1 and again[0].cached and again[0].data == first[0].data
    other = mesh_magic.edit(make_image(64, 64), operation="upscale", model=EVERYTHING)
    assert len(edits(server)) == 2 and not other[0].cached


def test_edits_wait_longer_by_default() -> None:
    configure(base_url="offline")
    image = make_image(32, 32)
    assert plan("x", {"image": image, "operation": "upscale"}).requests[0].timeout == EDIT_TIMEOUT
    assert plan("x", {"image": image, "operation": "upscale", "timeout": 9}).requests[0].timeout is None
    assert plan("x", {}).requests[0].timeout is None  # generations: the setting's


def test_one_edit_of_one_source_shows_before_and_after(
    server: MeshServer, source: mesh_magic.GeneratedImage
) -> None:
    result = source.upscale(model=EVERYTHING)
    html = result._repr_mimebundle_()[0]["text/html"]
    assert "mesh-magic-before-after" in html and "<b>before</b>" in html
    assert "upscale x2 of the meshapi/data-uri-preview image" in html
    two = source.edit("twice", model=EVERYTHING, n=2)._repr_mimebundle_()[0]["text/html"]
    assert "mesh-magic-before-after" not in two  # two results: the usual grid


def test_a_pil_image_round_trips(source: mesh_magic.GeneratedImage, server: MeshServer) -> None:
    out = mesh_magic.edit(source.to_pil(), operation="remove_background", model=EVERYTHING)[0]
    assert Image.open(io.BytesIO(out.data)).mode == "RGBA"

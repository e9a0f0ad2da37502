"""Class 5: an image counts only after it decodes completely, within the pixel limit.

Broken images (a corrupt IDAT with IEND intact, 8000x9900 declared over a 10-byte
IDAT, truncations with the end marker re-attached, wrong magic, bombs) arrive as
b64_json, as a data: URI and as a URL beside a good image: each is an item error,
never stored, cached, counted or shown, and the good one is. Hypothesis mutates
valid images: whatever `inspect_image` accepts must decode and thumbnail.
"""

from __future__ import annotations

import base64
import io
import json
import warnings
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from IPython.core.error import UsageError

import mesh_magic
from mesh_magic.core.errors import MeshImageError, ResponseError
from mesh_magic.core.images import inspect_image, thumbnail
from mesh_magic.server import Fault, MeshServer
from mesh_magic.server._images import corrupt_png, decompression_bomb, hollow_png
from tests.support.images import html_images, make_image, make_jpeg, make_png
from tests.support.mock_api import json_response, use_mock
from tests.support.servers import FAST_MODEL, OPENAI_MODEL, TINY, generations
from tests.support.shell import run
from tests.support.store_files import all_files, stored_images

GOOD = make_png(24, 24, (10, 200, 10))


def _png_with(width: int, height: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def _cut_keeping_end(data: bytes, marker: bytes) -> bytes:
    """The first third of `data`, with its end marker put back (passes an end-marker check)."""
    return data[: len(data) // 3] + marker


BIG_PNG = make_image(300, 200, color=(1, 2, 3))
BIG_JPEG = make_jpeg(300, 200, (90, 10, 200))
BROKEN = {
    "corrupt-idat": corrupt_png(),
    "hollow-8000x9900": hollow_png(),
    "hollow-2000x2000": hollow_png(2000, 2000),
    "short-rows": _png_with(64, 64, zlib.compress(b"\x00" * 100)),
    "png-half": BIG_PNG[: len(BIG_PNG) // 2],
    "png-cut-iend-kept": _cut_keeping_end(BIG_PNG, BIG_PNG[-12:]),
    "jpeg-cut-eoi-kept": _cut_keeping_end(BIG_JPEG, b"\xff\xd9"),
    "jpeg-header-only": BIG_JPEG[:20] + b"\xff\xd9",
    "wrong-magic": b"\xff\xd8\xff" + BIG_PNG[3:],
    "gif-junk": b"GIF89a" + b"\x00" * 40,
    "webp-junk": b"RIFF" + (40).to_bytes(4, "little") + b"WEBPVP8 " + b"\x00" * 32,
    "bomb": decompression_bomb(),
    "html": b"<!doctype html><html>nope</html>",
    "empty": b"",
}


def _deliver(how: str, data: bytes) -> dict[str, Any]:
    text = base64.b64encode(data).decode()
    if how == "b64_json":
        return {"b64_json": text}
    if how == "data_uri":
        return {"url": f"data:image/png;base64,{text}"}
    return {"url": "https://api.example.test/files/broken.png"}


def _mock(how: str, data: bytes) -> list[httpx.Request]:
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, content=data, headers={"content-type": "image/png"})
        sent.append(request)
        return json_response({"created": 1700000000, "data": [_deliver(how, data), {"b64_json": _b64(GOOD)}]})

    use_mock(handle)
    return sent


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.adversarial("5")
@pytest.mark.parametrize("how", ["b64_json", "data_uri", "url"])
@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_image_is_an_item_error_never_kept(kind: str, how: str, store: Path, tally: Any) -> None:
    sent = _mock(how, BROKEN[kind])
    result = mesh_magic.generate("two", model="m/a", n=2, cache="on")
    if len(result) != 1:
        tally.bad("corrupt_accepted")
    (image,) = result
    assert image.data == GOOD
    (failure,) = result.errors
    assert isinstance(failure.error, ResponseError)
    assert [p.read_bytes() for p in stored_images(store)] == [GOOD]  # only the good one is stored
    data, _ = result._repr_mimebundle_()
    assert [raw for _, raw in html_images(data["text/html"])] != []  # the good one shows
    # A re-run serves the stored image and asks only for the one that failed (this server
    # breaks it again): a broken image is never taken from the store.
    again = mesh_magic.generate("two", model="m/a", n=2, cache="on")
    assert len(sent) == 2 and json.loads(sent[1].content)["n"] == 1
    assert [(im.cached, im.data) for im in again if im.cached] == [(True, GOOD)]
    assert [p.read_bytes() for p in stored_images(store)].count(GOOD) == 2
    assert all(isinstance(e.error, ResponseError) for e in again.errors) and again.errors


@pytest.mark.adversarial("5")
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(
    "kind", ["corrupt_image", "hollow_image", "truncated_image", "not_image", "huge_image"]
)
def test_server_sends_a_broken_image(server: MeshServer, store: Path, kind: str, stream: bool) -> None:
    server.add_fault(Fault(kind, model=FAST_MODEL))
    with pytest.raises(ResponseError):  # the one item failed: nothing arrived
        mesh_magic.generate("a fox", model=FAST_MODEL, size=TINY, stream=stream)
    assert stored_images(store) == [] and len(generations(server)) == 1
    assert len(mesh_magic.generate("a fox", model=FAST_MODEL, size=TINY, stream=stream)) == 1  # sent again


@pytest.mark.adversarial("5")
def test_magic_with_a_corrupt_image_shows_no_image(shell: Any, server: MeshServer, store: Path) -> None:
    server.add_fault(Fault("corrupt_image", model=FAST_MODEL))
    with pytest.raises(ResponseError, match="could not be read"):
        run(shell, f"%%meshimg -m {FAST_MODEL} -s {TINY} -o r\na fox")
    assert stored_images(store) == [] and "r" not in shell.user_ns
    with pytest.raises(UsageError):
        run(shell, "%meshimg_history 0")  # a usage error, not a broken store
    assert len(run(shell, "%meshimg_history")) == 0


@pytest.mark.adversarial("5")
def test_panel_does_not_say_done_for_a_corrupt_image(server: MeshServer, store: Path) -> None:
    from mesh_magic.widget_panel import panel

    server.add_fault(Fault("hollow_image", model=OPENAI_MODEL))
    p = panel()
    try:
        p.prompt.value = "a fox"
        p.model.value = OPENAI_MODEL
        p.size.value = "1024x1024"
        p.generate_button.click()
        result = p.wait(20)
        assert result is not None and len(result) == 0
        assert len(p.gallery.children) == 0 and "Done: 1/1" not in p.status.value
        assert "too large" in p.errors.value or "could not be read" in p.errors.value
    finally:
        p.close()
    assert stored_images(store) == []


SEEDS = [make_png(16, 12, (200, 10, 10)), make_jpeg(16, 12, (5, 5, 200)), make_image(16, 12, fmt="GIF")]
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def mutated(draw: Any) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "splice", "zero"]))
        where = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[where] ^= draw(st.integers(1, 255))
        elif op == "cut":
            data = data[:where] + data[-12:]  # keeps the end marker
        elif op == "splice":
            data[where:where] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            data[where : where + 8] = b"\x00" * 8
    return bytes(data)


@pytest.mark.adversarial("5")
def test_whatever_is_accepted_decodes_and_thumbnails(tally: Any) -> None:
    from PIL import Image

    seen = [0]

    @PROPERTY
    @given(mutated())
    def check(data: bytes) -> None:
        seen[0] += 1
        try:
            info = inspect_image(data)
        except ResponseError:
            return
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                assert img.size == (info.width, info.height)
            thumbnail(data, 8)
        except Exception:
            tally.bad("corrupt_accepted")
            raise

    check()
    tally.tried("5", seen[0])


# -- history and cache over a store with planted bad entries -----------------------------


def _plant(store_root: Path, kind: str) -> None:
    """Make one entry of the store bad in the way `kind` names."""
    from mesh_magic.core.store import Store

    s = Store(store_root)
    stored = s.put(_victim())
    assert stored.path is not None
    image, sidecar = stored.path, stored.path.with_suffix(".json")
    import hashlib
    import json

    meta = json.loads(sidecar.read_text())
    bad_sidecars = {
        "sidecar-list": "[1, 2, 3]",
        "sidecar-text": '"hello"',
        "sidecar-null": "null",
        "sidecar-not-json": "{nope",
        "sidecar-deep": "[" * 100_000,
        "missing-model": json.dumps({k: v for k, v in meta.items() if k != "model"}),
        "width-text": json.dumps({**meta, "width": "24"}),
        "height-zero": json.dumps({**meta, "height": 0}),
        "prompt-number": json.dumps({**meta, "prompt": 5}),
        "stored-at-text": json.dumps({**meta, "stored_at": "soon", "model": None}),
    }
    if kind in bad_sidecars:
        sidecar.write_text(bad_sidecars[kind])
    elif kind == "image-missing":
        image.unlink()
    else:
        broken = {"image-corrupt": corrupt_png(), "image-hollow": hollow_png(), "image-empty": b""}[kind]
        image.write_bytes(broken)  # with a matching sha256: only a decode can tell
        sidecar.write_text(json.dumps({**meta, "sha256": hashlib.sha256(broken).hexdigest()}))


def _victim() -> Any:
    from tests.support.results import image

    return image(prompt="victim", model="m/victim")


PLANTED = [
    "sidecar-list",
    "sidecar-text",
    "sidecar-null",
    "sidecar-not-json",
    "sidecar-deep",
    "missing-model",
    "width-text",
    "height-zero",
    "prompt-number",
    "stored-at-text",
    "image-missing",
    "image-corrupt",
    "image-hollow",
    "image-empty",
]


def _good_entries(store_root: Path) -> None:
    from mesh_magic.core.store import Store
    from tests.support.results import image

    for n in range(3):
        Store(store_root).put(image(prompt=f"good {n}"))


@pytest.mark.adversarial("5")
@pytest.mark.parametrize("kind", PLANTED)
def test_history_skips_a_planted_bad_entry_and_says_so_once(store: Path, kind: str) -> None:
    _good_entries(store)
    _plant(store, kind)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shown = mesh_magic.history()
    assert sorted(im.prompt for im in shown) == ["good 0", "good 1", "good 2"]
    said = [str(w.message) for w in caught if issubclass(w.category, mesh_magic.MeshImageWarning)]
    assert len(said) == 1 and "Skipped 1 unreadable or malformed entry" in said[0]
    data, _ = shown._repr_mimebundle_()  # and it displays: every image decodes
    assert len(html_images(data["text/html"])) == 3


@pytest.mark.adversarial("5")
def test_meshimg_history_with_every_kind_planted(shell: Any, store: Path) -> None:
    _good_entries(store)
    for kind in PLANTED:
        _plant(store, kind)
    with pytest.warns(mesh_magic.MeshImageWarning, match=f"Skipped {len(PLANTED)} unreadable") as caught:
        shown = run(shell, "%meshimg_history 50")
    assert len(shown) == 3 and len(caught) == 1
    assert len(all_files(store / "images")) >= 3  # nothing was deleted: the user's files stay


@pytest.mark.adversarial("5")
@pytest.mark.parametrize("kind", ["image-corrupt", "image-hollow", "sidecar-list", "image-missing"])
def test_replay_never_serves_a_bad_stored_image(store: Path, kind: str) -> None:
    from mesh_magic.core.files import sidecar_for
    from mesh_magic.core.request import ImageRequest
    from mesh_magic.core.store import Store

    s = Store(store)
    stored = s.put(_victim())
    request = ImageRequest("victim", "m/victim")
    s.remember(request, "https://api.example.test", [stored])
    assert s.lookup(request, "https://api.example.test") is not None
    # Read before the files go: a stored image keeps no bytes in memory.
    original, meta = stored.data, sidecar_for(stored)
    for old in all_files(store / "images"):
        old.unlink()
    # The same entry, made bad (the index still points at its path).
    _plant_at(stored.path, meta, original, kind)
    assert Store(store).lookup(request, "https://api.example.test") is None


def _plant_at(path: Path, meta: dict[str, Any], original: bytes, kind: str) -> None:
    import hashlib
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"image-corrupt": corrupt_png(), "image-hollow": hollow_png()}.get(kind, original)
    meta["sha256"] = hashlib.sha256(data).hexdigest()
    if kind != "image-missing":
        path.write_bytes(data)
    path.with_suffix(".json").write_text(
        "[1, 2]" if kind == "sidecar-list" else json.dumps(meta, default=str)
    )


@pytest.mark.adversarial("5")
def test_errors_name_the_image_not_a_python_object(store: Path) -> None:
    with pytest.raises(MeshImageError) as caught:
        inspect_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 + b"IEND\xaeB`\x82")
    assert "BytesIO" not in str(caught.value) and "0x" not in str(caught.value)

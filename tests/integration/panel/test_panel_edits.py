"""The panel's edit flow driven from code, against a real MeshServer over loopback (SPEC 8).

A tile's Edit / Upscale / Remove background / Use as reference, the upload, the
operation picker following the model's capabilities, a mask or region, refusals
shown before anything is sent, lineage on the edited images, and Cancel.
`meshapi/data-uri-preview` can do every operation on the test server.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
from PIL import Image

from mesh_magic.core.results import GeneratedImage, ImageResult
from mesh_magic.server import MeshServer
from mesh_magic.widget_panel import ImagePanel
from tests.integration.panel.test_panel import caption, generate, shown, tile_button, tiles
from tests.support.images import make_png
from tests.support.servers import generation_bodies

EVERYTHING = "meshapi/data-uri-preview"
EDITS = "/v1/images/edits"
ALL_OPS = ["generate", "edit", "inpaint", "outpaint", "upscale", "remove_background", "reframe", "mix"]

Waiter = Callable[..., Any]


def edit_bodies(server: MeshServer) -> list[dict[str, Any]]:
    return [r.json for r in server.requests if r.method == "POST" and r.path == EDITS]


def offered(p: ImagePanel) -> list[str]:
    return [value for _, value in p.operation.options]


def sha(image: GeneratedImage) -> str:
    return hashlib.sha256(image.data).hexdigest()


def decoded(data_url: str) -> bytes:
    return base64.b64decode(data_url.split(",", 1)[1])


def upload(widget: Any, name: str, data: bytes, mime: str = "image/png") -> None:
    """What the browser sets on a FileUpload when a file is chosen."""
    widget.value = (
        {
            "name": name,
            "type": mime,
            "size": len(data),
            "content": memoryview(data),
            "last_modified": datetime.now(timezone.utc),
        },
    )


def finished(p: ImagePanel, before: int, timeout: float = 15.0) -> ImageResult:
    p.wait(timeout)
    assert len(p.results) == before + 1, shown(p.errors)
    return p.results[-1]


@pytest.fixture
def ready(make_panel: Callable[..., ImagePanel], wait_for: Waiter) -> Callable[..., ImagePanel]:
    """A panel whose model list has arrived (the operation picker depends on it)."""

    def build(**defaults: Any) -> ImagePanel:
        p = make_panel(**defaults)
        wait_for(lambda: len(p.model.options) > 1, 5, "the model list")
        return p

    return build


def test_the_operation_picker_shows_what_the_model_can_do(ready: Callable[..., ImagePanel]) -> None:
    p = ready(model=EVERYTHING)
    assert offered(p) == ALL_OPS
    p.model.value = "google/imagen-4"
    assert offered(p) == ["generate", "upscale"]
    p.model.value = "stability/sd-3.5-large"
    assert offered(p) == ["generate", "inpaint", "outpaint", "upscale", "remove_background"]
    p.operation.value = "remove_background"
    # Comparing models: only what every one of them can do.
    p.model.value = "openai/gpt-image-1, black-forest-labs/flux-kontext-pro"
    assert offered(p) == ["generate", "edit", "mix"]
    assert p.operation.value == "generate"
    assert "cannot remove background" in shown(p.image_input.note)
    p.model.value = "openai/dall-e-3"
    assert offered(p) == ["generate"]
    # A model the catalog does not list: its flags are unknown, so everything is offered.
    p.model.value = "someone/brand-new-model"
    assert offered(p) == ALL_OPS


def test_a_tiles_upscale_runs_at_once_with_lineage(
    ready: Callable[..., ImagePanel], server: MeshServer
) -> None:
    p = ready(model=EVERYTHING, size="256x256")
    [source] = generate(p, "a red fox in fresh snow")
    tile_button(tiles(p)[0], "upscale").click()
    result = finished(p, 1)

    [body] = edit_bodies(server)
    assert body["operation"] == "upscale" and body["model"] == EVERYTHING
    assert decoded(body["image"]) == source.data
    assert "prompt" not in body  # upscale takes no prompt: the box's text is not sent
    [upscaled] = result
    assert (upscaled.width, upscaled.height) == (512, 512)
    assert upscaled.operation == "upscale"
    assert [parent.sha256 for parent in upscaled.parents] == [sha(source)]
    assert upscaled.path is not None
    sidecar = json.loads(upscaled.path.with_suffix(".json").read_text())
    assert sidecar["operation"] == "upscale" and sidecar["parents"][0]["sha256"] == sha(source)
    assert "upscale x2" in caption(tiles(p)[0]) and len(tiles(p)) == 2
    assert "Done: 1/1 images" in shown(p.status)
    assert p.operation.value == "upscale" and p.generate_button.description == "Upscale"


def test_remove_background_from_a_tile(ready: Callable[..., ImagePanel], server: MeshServer) -> None:
    p = ready(model="stability/sd-3.5-large", size="256x256")
    generate(p, "a teapot on a table")
    tile_button(tiles(p)[0], "remove-background").click()
    [cutout] = finished(p, 1)
    assert [b["operation"] for b in edit_bodies(server)] == ["remove_background"]
    with Image.open(io.BytesIO(cutout.data)) as img:
        assert img.mode == "RGBA" and img.getextrema()[3][0] == 0


def test_a_model_that_cannot_is_refused_before_sending(
    ready: Callable[..., ImagePanel], server: MeshServer
) -> None:
    p = ready(model="openai/gpt-image-1", size="256x256")
    generate(p, "a lighthouse")
    assert "upscale" not in offered(p)
    tile_button(tiles(p)[0], "upscale").click()

    assert edit_bodies(server) == []
    assert "openai/gpt-image-1 cannot upscale" in shown(p.errors)
    assert "Models that can:" in shown(p.errors) and "google/imagen-4" in shown(p.errors)
    assert "Not sent" in shown(p.status)
    assert len(p.results) == 1 and not p.busy and not p.generate_button.disabled


def test_edit_needs_a_prompt_and_sends_it_with_the_image(
    ready: Callable[..., ImagePanel], server: MeshServer
) -> None:
    p = ready(model=EVERYTHING, size="256x256", quality="low")
    [source] = generate(p, "a quiet harbour")
    p.prompt.value = ""
    tile_button(tiles(p)[0], "edit").click()

    assert p.operation.value == "edit" and [i.value for i in p.image_input.images] == [source]
    assert len(p.image_input.chosen.children) == 1  # the thumbnail with its (x)
    assert p.generate_button.disabled
    assert "Edit needs a prompt" in p.generate_button.tooltip
    assert "Not ready" in shown(p.estimate_line)
    assert p.quality.disabled and p.output_format.disabled  # edits take n and size only
    assert edit_bodies(server) == []

    p.prompt.value = "make the sky stormy"
    assert not p.generate_button.disabled
    p.generate_button.click()
    [edited] = finished(p, 1)
    [body] = edit_bodies(server)
    assert body["prompt"] == "make the sky stormy" and body["operation"] == "edit"
    assert decoded(body["image"]) == source.data
    assert "quality" not in body and body["size"] == "256x256"
    assert edited.operation == "edit" and edited.parents[0].sha256 == sha(source)
    assert edited.parents[0].path == str(source.path)

    # The (x) takes the image out again: an edit without an image cannot run.
    p.image_input.chosen.children[0].children[1].children[0].click()
    assert p.image_input.images == [] and p.generate_button.disabled
    assert "needs an image" in p.generate_button.tooltip


def test_a_seed_in_extra_params_holds_an_edit_back(
    ready: Callable[..., ImagePanel], server: MeshServer
) -> None:
    p = ready(model=EVERYTHING, size="256x256")
    p.params.value = "seed=42"
    generate(p, "a windmill")
    p.prompt.value = "make it night"
    tile_button(tiles(p)[0], "edit").click()
    assert p.generate_button.disabled
    assert "seed does not apply to edits" in p.generate_button.tooltip
    p.params.value = ""
    assert not p.generate_button.disabled
    p.generate_button.click()
    finished(p, 1)
    assert [b["operation"] for b in edit_bodies(server)] == ["edit"]


def test_an_upload_inpainted_in_a_region(ready: Callable[..., ImagePanel], server: MeshServer) -> None:
    p = ready(model=EVERYTHING)
    picture = make_png(64, 48, (20, 90, 200))
    upload(p.image_input.upload, "harbour.png", picture)
    assert [i.label for i in p.image_input.images] == ["harbour.png"]
    assert p.operation.value == "edit"  # an uploaded picture is there to be edited
    assert p.image_input.upload.value == ()  # ready for the next file

    p.operation.value = "inpaint"
    assert p.image_input.mask_row.layout.display == "flex"
    assert p.generate_button.disabled and "Inpaint needs the area" in p.generate_button.tooltip
    x, y, w, h = p.image_input.region
    x.value, y.value, w.value, h.value = 8, 8, 16, 16
    assert not p.generate_button.disabled
    p.prompt.value = "a small boat"
    p.generate_button.click()
    [painted] = finished(p, 0)

    [body] = edit_bodies(server)
    assert body["operation"] == "inpaint" and decoded(body["image"]) == picture
    with Image.open(io.BytesIO(decoded(body["mask"]))) as mask:
        assert mask.size == (64, 48)
        assert mask.getpixel((10, 10))[3] == 0 and mask.getpixel((40, 40))[3] == 255
    assert painted.size == "64x48" and painted.parents[0].label == "harbour.png"


def test_bad_uploads_and_masks_are_refused_before_sending(
    ready: Callable[..., ImagePanel], server: MeshServer
) -> None:
    p = ready(model=EVERYTHING)
    upload(p.image_input.upload, "notes.txt", b"not a picture at all", "text/plain")
    assert p.image_input.images == []
    assert "notes.txt" in shown(p.image_input.note) and "PNG, JPEG or WebP" in shown(p.image_input.note)

    upload(p.image_input.upload, "small.png", make_png(64, 64))
    p.operation.value = "inpaint"
    upload(p.image_input.mask_upload, "mask.png", make_png(32, 32))
    assert p.image_input.mask is not None and not p.generate_button.disabled
    p.generate_button.click()
    assert "The mask is 32x32 but the image is 64x64" in shown(p.errors)
    assert "Not sent" in shown(p.status) and p.results == []

    p.image_input.region[2].value = 10
    p.image_input.region[3].value = 10
    assert p.generate_button.disabled and "a mask or a region, not both" in p.generate_button.tooltip
    assert edit_bodies(server) == []


def test_use_as_reference_mixes_two_images(ready: Callable[..., ImagePanel], server: MeshServer) -> None:
    p = ready(model=EVERYTHING, size="256x256", n=2)
    first, second = generate(p, "a fox and a hare")
    tile_button(tiles(p)[0], "edit").click()
    tile_button(tiles(p)[1], "reference").click()
    p.operation.value = "upscale"
    assert p.generate_button.disabled and "Upscale works on one image" in p.generate_button.tooltip
    p.operation.value = "mix"
    assert [i.value for i in p.image_input.images] == [first, second]
    p.prompt.value = "the fox in the hare's meadow"
    p.n.value = 1
    p.generate_button.click()
    [mixed] = finished(p, 1)

    [body] = edit_bodies(server)
    assert body["operation"] == "mix" and decoded(body["image"]) == first.data
    assert [decoded(r) for r in body["reference_images"]] == [second.data]
    assert [parent.sha256 for parent in mixed.parents] == [sha(first), sha(second)]
    assert "mix" in caption(tiles(p)[0]) and "with 1 more image" in caption(tiles(p)[0])


def test_a_reference_for_a_generation(ready: Callable[..., ImagePanel], server: MeshServer) -> None:
    p = ready(model=EVERYTHING, size="256x256")
    [source] = generate(p, "a paper crane")
    tile_button(tiles(p)[0], "reference").click()
    assert p.operation.value == "generate" and p.generate_button.description == "Generate"
    [chip] = p.image_input.chosen.children
    assert shown(chip.children[1].children[1]) == "a reference"
    generate(p, "a flock of paper cranes")
    assert edit_bodies(server) == []
    reference = generation_bodies(server)[-1]
    assert reference["prompt"] == "a flock of paper cranes" and decoded(reference["image"]) == source.data
    assert p.results[-1][0].parents[0].sha256 == sha(source)


def test_reframe_sends_the_aspect_ratio(ready: Callable[..., ImagePanel], server: MeshServer) -> None:
    p = ready(model=EVERYTHING, size="256x256")
    generate(p, "a tall tower")
    tile_button(tiles(p)[0], "edit").click()
    assert p.image_input.aspect_ratio.layout.display == "none"
    p.operation.value = "reframe"
    assert p.image_input.aspect_ratio.layout.display == "flex"
    assert p.image_input.mask_row.layout.display == "none"  # no mask for reframe
    p.image_input.aspect_ratio.value = "16:9"
    assert p.size.disabled  # the aspect ratio gives the shape
    p.prompt.value = ""
    p.generate_button.click()
    [wide] = finished(p, 1)
    [body] = edit_bodies(server)
    assert body["operation"] == "reframe" and body["aspect_ratio"] == "16:9" and "size" not in body
    assert abs(wide.width / wide.height - 16 / 9) < 0.02


def test_cancel_stops_a_slow_edit(
    ready: Callable[..., ImagePanel], server: MeshServer, wait_for: Waiter
) -> None:
    p = ready(model=EVERYTHING, size="256x256")
    generate(p, "a slow river")
    server.latency = 5.0
    tile_button(tiles(p)[0], "upscale").click()
    wait_for(lambda: server.in_flight == 1, 5, "the edit to reach the server")
    assert p.busy and p.generate_button.disabled and "Upscaling" in shown(p.status)

    p.cancel_button.click()
    assert not p.busy
    assert "Cancelled" in shown(p.status) and "kept 0 of 1" in shown(p.status)
    assert p.results[-1].interrupted and len(p.results[-1]) == 0
    assert not p.generate_button.disabled
    wait_for(lambda: server.in_flight == 0, 2, "the server to see the edit dropped")


def test_using_an_image_from_code(ready: Callable[..., ImagePanel], server: MeshServer) -> None:
    p = ready(model="google/imagen-4")
    assert p.use(make_png(32, 32), "upscale")
    assert p.prompt.disabled and p.generate_button.description == "Upscale"
    assert not p.use(make_png(32, 32), "edit")  # imagen-4 cannot edit
    assert "cannot edit" in shown(p.image_input.note)
    kept = list(p.image_input.images)
    assert not p.use(b"not an image", "upscale")  # refused by the core's checks: nothing changes
    assert "is not an image" in shown(p.image_input.note) and "PNG, JPEG or WebP" in shown(p.image_input.note)
    assert p.image_input.images == kept and len(p.image_input.chosen.children) == 1
    p.image_input.clear()
    assert p.image_input.images == [] and p.operation.value == "generate" and not p.prompt.disabled
    assert edit_bodies(server) == []

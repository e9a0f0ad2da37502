"""Edits through %%meshimg / %meshimg: -i, --op, --mask, --region, --ref and --seed (SPEC 8)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

from mesh_magic.server import MeshServer
from tests.support.images import make_image
from tests.support.published import Publications
from tests.support.shell import run

EVERYTHING = "meshapi/data-uri-preview"


def posted(server: MeshServer, path: str) -> list[Any]:
    return [r.json for r in server.requests if r.method == "POST" and r.path == path]


@pytest.fixture
def fox(shell: Any, server: MeshServer, published: Publications) -> Any:
    run(shell, f"%%meshimg -m {EVERYTHING} -s 128x128 -o result --no-display\na fox in the snow")
    server.reset()
    return shell.user_ns["result"]


def test_an_edit_of_a_variable(shell: Any, server: MeshServer, published: Publications, fox: Any) -> None:
    edited = run(shell, f"%%meshimg -i result -m {EVERYTHING}\nthe same fox at night")
    (body,) = posted(server, "/v1/images/edits")
    assert body["operation"] == "edit" and body["prompt"] == "the same fox at night"
    assert edited[0].parents[0].label == "result" and edited[0].operation == "edit"
    assert "edit of result" in published.html and "mesh-magic-before-after" in published.html


def test_line_magic_ops_on_an_item_of_a_result(
    shell: Any, server: MeshServer, published: Publications, fox: Any
) -> None:
    shell.user_ns["images"] = [fox[0]]
    upscaled = run(shell, f"%meshimg -i result[0] --op upscale -m {EVERYTHING}")
    assert upscaled[0].width == 256 and upscaled[0].parents[0].label == "result[0]"
    cutout = run(shell, f"%meshimg -i images[-1] --op remove_background -m {EVERYTHING}")
    assert cutout[0].to_pil().mode == "RGBA"
    assert [b["operation"] for b in posted(server, "/v1/images/edits")] == ["upscale", "remove_background"]


def test_inpaint_with_a_region_or_a_mask_file(
    shell: Any, server: MeshServer, published: Publications, fox: Any, tmp_path: Path
) -> None:
    run(shell, f"%%meshimg -i result --op inpaint --region 0.25,0.25,0.5,0.5 -m {EVERYTHING}\na moon")
    from PIL import Image

    mask = Image.new("RGBA", (128, 128), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 64, 64))
    mask.save(tmp_path / "mask.png")
    run(shell, f"%%meshimg -i result --op inpaint --mask {tmp_path / 'mask.png'} -m {EVERYTHING}\na sun")
    bodies = posted(server, "/v1/images/edits")
    assert len(bodies) == 2 and all(b["mask"].startswith("data:image/png;base64,") for b in bodies)


def test_mix_two_images_and_a_reference_generation(
    shell: Any, server: MeshServer, published: Publications, fox: Any, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(make_image(128, 128))
    mixed = run(shell, f"%%meshimg -i result -i {photo} --op mix -m {EVERYTHING}\nboth together")
    assert len(mixed[0].parents) == 2
    (edit_body,) = posted(server, "/v1/images/edits")
    assert len(edit_body["reference_images"]) == 1
    run(shell, "%%meshimg --ref result -m openai/gpt-image-1 -s 128x128 --seed 7\na fox like this one")
    (gen_body,) = posted(server, "/v1/images/generations")
    assert gen_body["image"].startswith("data:image/png;base64,") and gen_body["seed"] == 7


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (f"%%meshimg -i nowhere.png -m {EVERYTHING}\nx", "does not exist"),
        (f"%meshimg -i result -m {EVERYTHING}", "edit needs a prompt"),
        (f"%%meshimg -i result --op sharpen -m {EVERYTHING}\nx", "Unknown operation 'sharpen'"),
        (f"%%meshimg -i result --op inpaint -m {EVERYTHING}\nx", "--mask SRC"),
        (f"%%meshimg -i result --op inpaint --region 0,0,999,10 -m {EVERYTHING}\nx", "reaches past"),
        ("%meshimg -i result --op upscale -m openai/dall-e-3", "cannot upscale"),
        (f"%%meshimg --op upscale -m {EVERYTHING}\nx", "An edit needs an image"),
        (f"%meshimg -i result --op upscale --seed 3 -m {EVERYTHING}", "seed does not apply"),
        (f"%meshimg -i result[5] --op upscale -m {EVERYTHING}", "has no item 5"),
    ],
)
def test_bad_edits_are_one_line_and_send_nothing(
    shell: Any, server: MeshServer, published: Publications, fox: Any, cell: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message) as info:
        run(shell, cell)
    assert "\n" not in str(info.value)
    assert [r for r in server.requests if r.method == "POST"] == []


def test_help_lists_the_edit_options(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_cell("%%meshimg?")
    text = capsys.readouterr().out
    for option in ("-i", "--image", "--op", "--mask", "--region", "--ref", "--seed"):
        assert option in text, option

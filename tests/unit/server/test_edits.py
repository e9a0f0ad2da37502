"""POST /v1/images/edits over loopback HTTP: what each operation does to the pixels, formats, faults."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image, ImageChops, ImageDraw

from mesh_magic.server import Fault, MeshServer, offline_transport
from tests.unit.server.edit_bodies import (
    ANY_MODEL,
    EDITS,
    above_band,
    bare,
    data_url,
    disc,
    flat,
    hole_mask,
    mean,
    photo,
    post_edit,
    result,
    results,
)


@pytest.fixture
def client(server: MeshServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as c:
        yield c


def same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a.convert("RGBA"), b.convert("RGBA")).getbbox() is None


# -- upscale ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factor", "expected"), [(None, (480, 320)), ("2", (480, 320)), ("x4", (960, 640)), ("3", (720, 480))]
)
def test_upscale_makes_a_bigger_image_of_the_same_picture(
    client: httpx.Client, factor: str | None, expected: tuple[int, int]
) -> None:
    source = photo(240, 160)
    body = {} if factor is None else {"upscale_factor": factor}
    big = result(client, source, operation="upscale", **body)
    assert big.size == expected and big.format == "PNG"
    # Shrunk back, it is the source again (apart from the label band and sharpening).
    back = big.resize(source.size, Image.Resampling.BOX)
    diff = mean(ImageChops.difference(above_band(back, 20), above_band(source, 20)))
    assert max(diff) < 12


def test_upscale_is_bounded_to_the_largest_side(client: httpx.Client) -> None:
    big = result(client, flat((10, 120, 200), (3000, 1000)), operation="upscale", upscale_factor="4")
    assert big.size == (4096, 1365)


def test_upscale_by_resolution(client: httpx.Client) -> None:
    assert result(client, photo(256, 128), operation="upscale", resolution="1K").size == (1024, 512)


def test_upscale_keeps_transparency(client: httpx.Client) -> None:
    cutout = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    cutout.paste((200, 30, 30, 255), (16, 8, 48, 40))
    big = result(client, cutout, operation="upscale")
    assert big.mode == "RGBA" and big.size == (128, 128)
    assert big.getpixel((2, 2))[3] == 0 and big.getpixel((64, 48))[3] == 255


# -- remove_background --------------------------------------------------------------------


def test_remove_background_leaves_the_subject_on_transparency(client: httpx.Client) -> None:
    response = post_edit(client, disc(200), operation="remove_background")
    (cut,) = results(response)
    assert cut.mode == "RGBA" and cut.size == (200, 200)
    assert response.json()["background"] == "transparent"
    alpha = cut.getchannel("A")
    for corner in [(2, 2), (197, 2), (197, 120), (100, 10), (10, 100)]:
        assert alpha.getpixel(corner) == 0, corner
    assert alpha.getpixel((100, 100)) == 255
    assert cut.getpixel((100, 100))[:3] == (200, 30, 30)  # the subject is kept as it was
    clear = alpha.histogram()[0] / (200 * 200)
    assert 0.7 < clear < 0.9  # the disc is ~13% of the picture, the label tag a few %


def test_remove_background_on_a_gradient_background(client: httpx.Client) -> None:
    sky = Image.linear_gradient("L").resize((160, 160)).convert("RGB")
    sky.paste((200, 30, 30), (60, 60, 100, 100))
    alpha = result(client, sky, operation="remove_background").getchannel("A")
    assert alpha.getpixel((80, 80)) == 255
    assert all(alpha.getpixel((x, y)) == 0 for x, y in [(5, 5), (150, 5), (5, 120), (150, 120), (80, 20)])


def test_remove_background_onto_a_colour(client: httpx.Client) -> None:
    out = result(client, disc(120), operation="remove_background", background="white")
    assert out.mode == "RGB" and out.getpixel((3, 3)) == (255, 255, 255)
    assert out.getpixel((60, 60)) == (200, 30, 30)


# -- outpaint -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "canvas"),
    [
        ({}, (240, 180)),
        ({"expand_factor": 2}, (320, 240)),
        ({"expand_factor": "1.25"}, (200, 150)),
        ({"aspect_ratio": "16:9"}, (214, 120)),
        ({"size": "400x300"}, (400, 300)),
    ],
)
def test_outpaint_holds_the_original_unchanged_in_a_larger_canvas(
    client: httpx.Client, options: dict[str, object], canvas: tuple[int, int]
) -> None:
    source = photo(160, 120)
    out = result(client, source, operation="outpaint", prompt="more of the harbour", **options)
    assert out.size == canvas
    at = ((canvas[0] - 160) // 2, (canvas[1] - 120) // 2)
    assert same(out.crop((at[0], at[1], at[0] + 160, at[1] + 120)), source)
    # ...and the new margins are painted, not left empty.
    margins = out.convert("RGB")
    margins.paste((0, 0, 0), (at[0], at[1], at[0] + 160, at[1] + 120))
    share = (canvas[0] * canvas[1]) / (canvas[0] * canvas[1] - 160 * 120)
    assert sum(mean(margins)) * share > 60


# -- inpaint ------------------------------------------------------------------------------


@pytest.mark.parametrize("feather", [None, 6])
def test_inpaint_changes_only_the_transparent_part_of_the_mask(
    client: httpx.Client, feather: int | None
) -> None:
    source = photo(200, 150)
    hole = (40, 30, 139, 109)
    body = {"mask": data_url(hole_mask(source.size, hole))}
    if feather is not None:
        body["mask_feather"] = feather
    out = result(client, source, operation="inpaint", prompt="a red boat", **body)
    assert out.size == source.size
    changed = ImageChops.difference(out.convert("RGB"), source).getbbox()
    assert changed is not None
    left, top, right, bottom = changed
    assert left >= hole[0] and top >= hole[1] and right <= hole[2] + 1 and bottom <= hole[3] + 1
    inside = ImageChops.difference(out.convert("RGB").crop(hole), source.crop(hole))
    assert max(mean(inside)) > 10  # the hole really was painted


def test_inpaint_keeps_the_source_alpha_outside_the_hole(client: httpx.Client) -> None:
    source = Image.new("RGBA", (64, 64), (30, 60, 90, 0))
    mask = hole_mask((64, 64), (16, 16, 47, 47))
    out = result(client, source, operation="inpaint", mask=data_url(mask))
    assert out.mode == "RGBA"
    assert out.getpixel((2, 2))[3] == 0 and out.getpixel((30, 30))[3] == 255


# -- mix ----------------------------------------------------------------------------------


def test_mix_blends_the_image_with_its_references(client: httpx.Client) -> None:
    red, blue, green = flat((240, 0, 0)), flat((0, 0, 240)), flat((0, 240, 0))
    two = result(client, red, operation="mix", prompt="blend", reference_images=[data_url(blue)])
    assert two.size == (128, 128)
    r, g, b = two.getpixel((64, 20))[:3]
    assert abs(r - 120) <= 3 and g <= 3 and abs(b - 120) <= 3
    three = result(client, red, operation="mix", prompt="blend", reference_images=[bare(blue), bare(green)])
    assert all(abs(c - 80) <= 3 for c in three.getpixel((64, 20))[:3])


# -- reframe ------------------------------------------------------------------------------


@pytest.mark.parametrize(("ratio", "size"), [("16:9", (341, 192)), ("9:16", (192, 341)), ("1:1", (256, 256))])
def test_reframe_gives_the_aspect_ratio_and_keeps_the_whole_picture(
    client: httpx.Client, ratio: str, size: tuple[int, int]
) -> None:
    source = disc(256)
    out = result(client, source, operation="reframe", aspect_ratio=ratio)
    assert out.size == size
    # The subject (the disc) is whole and centred in the new frame.
    cx, cy = size[0] // 2, size[1] // 2
    assert out.getpixel((cx, min(cy, size[1] - 60)))[:3] == (200, 30, 30)


def test_reframe_to_an_exact_size(client: httpx.Client) -> None:
    assert result(client, disc(200), operation="reframe", size="300x100").size == (300, 100)


# -- edit ---------------------------------------------------------------------------------


def test_edit_darker_darkens(client: httpx.Client) -> None:
    source = photo(200, 150)
    out = result(client, source, prompt="make the sky darker")
    assert out.size == source.size
    assert sum(mean(above_band(out))) < 0.75 * sum(mean(above_band(source)))


def test_edit_black_and_white(client: httpx.Client) -> None:
    r, g, b = result(client, photo(), prompt="black and white please").convert("RGB").getpixel((50, 40))
    assert r == g == b


def test_edit_with_a_colour_word_tints_toward_it(client: httpx.Client) -> None:
    grey = flat((128, 128, 128), (96, 96))
    r, g, b = result(client, grey, prompt="make it more blue").getpixel((48, 20))[:3]
    assert b > r + 20 and b > g + 20


def test_edit_with_any_prompt_alters_the_picture(client: httpx.Client) -> None:
    source = photo()
    out = result(client, source, prompt="a quiet mood")
    assert max(mean(ImageChops.difference(above_band(out.convert("RGB")), above_band(source)))) > 5


def test_masked_edit_changes_only_the_hole(client: httpx.Client) -> None:
    source = photo(160, 120)
    out = result(client, source, prompt="darker", mask=data_url(hole_mask(source.size, (0, 0, 79, 119))))
    changed = ImageChops.difference(out.convert("RGB"), source).getbbox()
    assert changed is not None and changed[2] <= 80


def test_edit_is_deterministic_and_n_gives_distinct_variants(client: httpx.Client) -> None:
    source = photo(96, 64)
    first = post_edit(client, source, prompt="warmer", n=3).json()["data"]
    again = post_edit(client, source, prompt="warmer", n=3).json()["data"]
    assert [d["b64_json"] for d in first] == [d["b64_json"] for d in again]
    assert len({d["b64_json"] for d in first}) == 3


@pytest.mark.parametrize(
    "image",
    [lambda img: {"url": data_url(img)}, bare, lambda img: bare(img).rstrip("=")],
    ids=["ref", "bare", "unpadded"],
)
def test_every_image_form_is_accepted(client: httpx.Client, image: object) -> None:
    source = photo(96, 64)
    encoded = image(source)  # type: ignore[operator]
    assert result(client, encoded, operation="upscale").size == (192, 128)


def test_jpeg_and_webp_sources(client: httpx.Client) -> None:
    for fmt in ("JPEG", "WEBP"):
        out = io.BytesIO()
        photo(96, 64).save(out, fmt)
        url = f"data:image/{fmt.lower()};base64,{base64.b64encode(out.getvalue()).decode()}"
        assert result(client, url, operation="upscale").size == (192, 128)


# -- the answer's shape -------------------------------------------------------------------


def test_answer_has_the_generations_shape_with_usage(client: httpx.Client) -> None:
    body = post_edit(client, photo(96, 64), operation="upscale", n=2).json()
    assert set(body) >= {"created", "data", "usage", "size", "output_format"}
    assert body["size"] == "192x128" and body["output_format"] == "png" and len(body["data"]) == 2
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["input_tokens_details"]["image_tokens"] > 0 and usage["images"] == 2
    assert all("revised_prompt" not in item for item in body["data"])


def test_url_answers_are_served_by_the_server(client: httpx.Client) -> None:
    response = post_edit(
        client, photo(96, 64), model="stability/sd-3.5-large", operation="upscale", response_format=None
    )
    (item,) = response.json()["data"]
    assert item["url"].startswith("http://") and "/v1/files/" in item["url"]
    fetched = httpx.get(item["url"])
    assert fetched.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(fetched.content)).size == (192, 128)


def test_b64_only_models_answer_b64_and_data_uri_models_data_urls(client: httpx.Client) -> None:
    source = photo(96, 64)
    openai = post_edit(client, source, model="openai/gpt-image-1", prompt="warmer", response_format="url")
    assert "b64_json" in openai.json()["data"][0]
    data = post_edit(client, source, model=ANY_MODEL, prompt="warmer", response_format="url")
    assert data.json()["data"][0]["url"].startswith("data:image/png;base64,")


def test_in_process_offline_edit() -> None:
    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=offline_transport(), base_url="http://offline") as c:
            return await c.post(
                EDITS, json={"model": ANY_MODEL, "image": bare(photo(64, 64)), "operation": "upscale"}
            )

    import asyncio

    response = asyncio.run(run())
    assert response.status_code == 200 and response.json()["size"] == "128x128"


# -- faults on the edits path -------------------------------------------------------------


def test_a_status_fault_on_the_edits_path_hits_edits_only(server: MeshServer, client: httpx.Client) -> None:
    server.add_fault(Fault("status", status=429, retry_after="3", path=EDITS))
    gen = client.post("/v1/images/generations", json={"prompt": "x", "size": "64x64"})
    assert gen.status_code == 200
    response = post_edit(client, photo(64, 64), operation="upscale")
    assert response.status_code == 429 and response.headers["retry-after"] == "3"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert post_edit(client, photo(64, 64), operation="upscale").status_code == 200


def test_generation_faults_do_not_hit_edits(server: MeshServer, client: httpx.Client) -> None:
    server.add_fault(Fault("status", status=500))
    assert post_edit(client, photo(64, 64), operation="upscale").status_code == 200
    assert client.post("/v1/images/generations", json={"prompt": "x", "size": "64x64"}).status_code == 500


def test_an_edit_fault_can_name_the_model(server: MeshServer, client: httpx.Client) -> None:
    server.add_fault(Fault("status", status=503, path=EDITS, model="stability/sd-3.5-large"))
    assert post_edit(client, photo(64, 64), operation="upscale").status_code == 200
    stability = post_edit(client, photo(64, 64), operation="upscale", model="stability/sd-3.5-large")
    assert stability.status_code == 503


@pytest.mark.parametrize(
    "kind", ["not_image", "truncated_image", "corrupt_b64", "empty_data", "malformed_json"]
)
def test_content_faults_on_edits(server: MeshServer, client: httpx.Client, kind: str) -> None:
    server.add_fault(Fault(kind, path=EDITS))
    response = post_edit(client, photo(64, 64), operation="upscale")
    assert response.status_code == 200
    if kind == "malformed_json":
        with pytest.raises(ValueError):
            response.json()
        return
    data = response.json()["data"]
    if kind == "empty_data":
        assert data == []
        return
    with pytest.raises(Exception):  # noqa: B017 - any decoding failure will do
        Image.open(io.BytesIO(base64.b64decode(data[0]["b64_json"], validate=True))).load()


def test_reset_fault_on_edits(server: MeshServer, client: httpx.Client) -> None:
    server.add_fault(Fault("reset", path=EDITS))
    with pytest.raises(httpx.RemoteProtocolError):
        post_edit(client, photo(64, 64), operation="upscale")


def test_edits_are_logged_and_counted_in_flight(server: MeshServer, client: httpx.Client) -> None:
    post_edit(client, photo(64, 64), operation="upscale", upscale_factor="2")
    (logged,) = [r for r in server.app.requests if r.path == EDITS]
    assert logged.json["operation"] == "upscale" and logged.headers["authorization"].startswith("Bearer ")
    assert server.app.max_in_flight >= 1


def test_remove_background_without_a_clear_subject_keeps_a_centred_oval(client: httpx.Client) -> None:
    # A texture: nothing stands out from the edges as one subject.
    texture = Image.effect_noise((200, 200), 90).convert("RGB")
    alpha = result(client, texture, operation="remove_background").getchannel("A")
    assert alpha.getpixel((100, 100)) == 255
    assert all(alpha.getpixel(p) == 0 for p in [(2, 2), (197, 2), (2, 140), (197, 140)])


def test_remove_background_finds_a_subject_off_centre(client: httpx.Client) -> None:
    # A night sky (a gradient) with a moon near its top-right corner.
    sky = Image.linear_gradient("L").resize((200, 200)).point(lambda v: v // 3)
    scene = Image.merge("RGB", (sky, sky, sky.point(lambda v: v + 60)))
    ImageDraw.Draw(scene).ellipse((130, 20, 170, 60), fill=(250, 240, 200))
    alpha = result(client, scene, operation="remove_background").getchannel("A")
    assert alpha.getpixel((150, 40)) == 255
    assert all(alpha.getpixel(p) == 0 for p in [(100, 100), (40, 40), (150, 150), (5, 5)])


def test_the_offline_backend_keeps_a_bounded_request_log() -> None:
    from mesh_magic.server import create_app
    from mesh_magic.server._state import OFFLINE_LOG_SIZE

    app = create_app(offline=True)

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://offline") as c:
            for _ in range(OFFLINE_LOG_SIZE + 5):
                await c.get("/v1/models")

    import asyncio

    asyncio.run(run())
    assert len(app.requests) == OFFLINE_LOG_SIZE

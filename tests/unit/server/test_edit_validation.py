"""POST /v1/images/edits refuses like the real API: FastAPI 422 lists, MeshAPI envelopes, capabilities."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from PIL import Image

from mesh_magic.server import MODELS, MeshServer
from mesh_magic.server._edit_validation import EDIT_FIELDS
from mesh_magic.server._images import decompression_bomb, truncated_png
from mesh_magic.server._models import OPERATIONS
from tests.support.paths import REPO
from tests.unit.server.edit_bodies import (
    ANY_MODEL,
    EDITS,
    bare,
    data_url,
    envelope_detail,
    flat,
    hole_mask,
    photo,
    post_edit,
)

IMAGE_MODELS = [m for m in MODELS if "image" in m["output_modalities"]]
SMALL = photo(64, 48)
NEEDS_A_PROMPT = ("edit", "outpaint", "mix")


@pytest.fixture
def client(server: MeshServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as c:
        yield c


def fastapi_errors(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text[:300]
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], list)
    return list(body["detail"])


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# -- FastAPI-shaped 422s: the body breaks the schema --------------------------------------


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        ({"model": ANY_MODEL, "prompt": "x"}, ["body", "image"], "missing"),
        ({"image": bare(SMALL), "prompt": "x"}, ["body", "model"], "missing"),
        ({"model": ANY_MODEL, "image": bare(SMALL)}, ["body", "prompt"], "value_error"),
        ({"model": ANY_MODEL, "image": bare(SMALL), "prompt": "   "}, ["body", "prompt"], "value_error"),
        (
            {"model": ANY_MODEL, "image": bare(SMALL), "operation": "sharpen"},
            ["body", "operation"],
            "literal_error",
        ),
        (
            {"model": ANY_MODEL, "image": bare(SMALL), "operation": "upscale", "seed": 3},
            ["body", "seed"],
            "extra_forbidden",
        ),
        (
            {"model": ANY_MODEL, "image": bare(SMALL), "operation": "upscale", "n": 0},
            ["body", "n"],
            "greater_than_equal",
        ),
        (
            {"model": ANY_MODEL, "image": bare(SMALL), "operation": "upscale", "n": 11},
            ["body", "n"],
            "less_than_equal",
        ),
        (
            {"model": ANY_MODEL, "image": bare(SMALL), "operation": "upscale", "n": "2"},
            ["body", "n"],
            "int_type",
        ),
        (
            {"model": ANY_MODEL, "image": bare(SMALL), "operation": "upscale", "response_format": "png"},
            ["body", "response_format"],
            "literal_error",
        ),
        (
            {"model": ANY_MODEL, "image": bare(SMALL), "operation": "inpaint", "mask_feather": "3"},
            ["body", "mask_feather"],
            "int_type",
        ),
        (
            {
                "model": ANY_MODEL,
                "image": bare(SMALL),
                "operation": "mix",
                "prompt": "x",
                "reference_images": "a",
            },
            ["body", "reference_images"],
            "list_type",
        ),
        (
            {"model": ANY_MODEL, "image": {"href": "x"}, "operation": "upscale"},
            ["body", "image", "ImageRef", "url"],
            "missing",
        ),
        (
            {"model": ANY_MODEL, "image": bare(SMALL), "operation": "upscale", "upscale_factor": 2},
            ["body", "upscale_factor"],
            "string_type",
        ),
        (
            {"model": ANY_MODEL, "image": bare(SMALL), "operation": "upscale", "prompt": None},
            ["body", "prompt"],
            "string_type",
        ),
        (
            {"model": 5, "image": bare(SMALL), "operation": "upscale"},
            ["body", "model"],
            "string_type",
        ),
    ],
)
def test_schema_problems_are_fastapi_422s(
    client: httpx.Client, body: dict[str, Any], loc: list[str], kind: str
) -> None:
    errors = fastapi_errors(client.post(EDITS, json=body))
    assert [(e["loc"], e["type"]) for e in errors] == [(loc, kind)]
    assert all(e["msg"] for e in errors)


@pytest.mark.parametrize("operation", NEEDS_A_PROMPT)
def test_prompt_is_required_for_edit_outpaint_and_mix(client: httpx.Client, operation: str) -> None:
    body = {
        "model": ANY_MODEL,
        "image": bare(SMALL),
        "operation": operation,
        "reference_images": [bare(SMALL)],
    }
    (error,) = fastapi_errors(client.post(EDITS, json=body))
    assert error["loc"] == ["body", "prompt"] and f"'{operation}'" in error["msg"]


@pytest.mark.parametrize("operation", ["inpaint", "reframe", "upscale", "remove_background"])
def test_prompt_may_be_empty_for_the_others(client: httpx.Client, operation: str) -> None:
    body: dict[str, Any] = {"operation": operation, "prompt": ""}
    if operation == "inpaint":
        body["mask"] = bare(hole_mask(SMALL.size, (8, 8, 31, 31)))
    if operation == "reframe":
        body["aspect_ratio"] = "4:3"
    assert post_edit(client, SMALL, **body).status_code == 200


def test_an_image_of_the_wrong_type_names_both_union_members(client: httpx.Client) -> None:
    errors = fastapi_errors(client.post(EDITS, json={"model": ANY_MODEL, "image": 7, "operation": "upscale"}))
    assert [e["loc"] for e in errors] == [["body", "image", "str"], ["body", "image", "ImageRef"]]


def test_several_schema_problems_are_reported_together(client: httpx.Client) -> None:
    errors = fastapi_errors(client.post(EDITS, json={"operation": "blur", "n": 0, "style": "x"}))
    locs = {tuple(e["loc"]) for e in errors}
    assert {
        ("body", "style"),
        ("body", "model"),
        ("body", "image"),
        ("body", "operation"),
        ("body", "n"),
    } <= locs


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1, 2]", b'"text"'])
def test_unparseable_body_is_422(client: httpx.Client, raw: bytes) -> None:
    response = client.post(EDITS, content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and isinstance(response.json()["detail"], list)


# -- MeshAPI envelopes: the gateway's own checks ------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("image", "https://example.com/cat.png", "remote URLs are not accepted"),
        ("image", {"url": "http://127.0.0.1:9/cat.png"}, "remote URLs are not accepted"),
        ("image", "!!! not base64 @@@", "not valid base64"),
        ("image", "data:text/plain;base64,aGVsbG8=", "not an image"),
        ("image", "data:image/png," + "x" * 8, "not a base64 data URL"),
        ("image", b64(b"hello world, definitely not a picture"), "not an image"),
        ("image", b64(truncated_png()), "truncated or corrupt"),
        ("image", b64(decompression_bomb()), "px"),
        ("image", bare(flat((1, 2, 3), (8, 8))), "16-4096"),
    ],
)
def test_bad_images_are_422_validation_errors_with_the_reason(
    client: httpx.Client, field: str, value: Any, words: str
) -> None:
    response = client.post(EDITS, json={"model": ANY_MODEL, field: value, "operation": "upscale"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    detail = envelope_detail(response)
    assert detail["loc"] == ["body", "image"] and words in detail["msg"] and detail["type"] == "value_error"


def test_a_remote_reference_image_is_refused_at_its_index(client: httpx.Client) -> None:
    refs = [bare(SMALL), "https://cdn.example.com/a.png"]
    response = post_edit(client, SMALL, operation="mix", prompt="x", reference_images=refs)
    assert envelope_detail(response)["loc"] == ["body", "reference_images", 1]


def test_a_remote_mask_is_refused(client: httpx.Client) -> None:
    response = post_edit(client, SMALL, operation="inpaint", mask="https://example.com/mask.png")
    assert response.status_code == 422 and envelope_detail(response)["loc"] == ["body", "mask"]


@pytest.mark.parametrize(
    ("mask", "words"),
    [
        (hole_mask((32, 32), (0, 0, 9, 9)), "the mask is 32x32 but the image is 64x48"),
        (Image.new("RGB", (64, 48), (0, 0, 0)), "no alpha channel"),
        (Image.new("RGBA", (64, 48), (0, 0, 0, 255)), "no fully transparent pixels"),
    ],
    ids=["size", "no-alpha", "opaque"],
)
def test_bad_masks_are_refused(client: httpx.Client, mask: Image.Image, words: str) -> None:
    response = post_edit(client, SMALL, operation="inpaint", mask=data_url(mask))
    assert response.status_code == 422
    detail = envelope_detail(response)
    assert detail["loc"] == ["body", "mask"] and words in detail["msg"]


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        ({"operation": "inpaint"}, ["body", "mask"], "inpaint needs a mask"),
        ({"operation": "mix", "prompt": "x"}, ["body", "reference_images"], "at least one reference"),
        ({"operation": "upscale", "upscale_factor": "5"}, ["body", "upscale_factor"], "one of 2, 3, 4"),
        ({"operation": "upscale", "upscale_factor": "big"}, ["body", "upscale_factor"], "a number"),
        ({"operation": "reframe"}, ["body", "aspect_ratio"], "needs aspect_ratio"),
        ({"operation": "reframe", "aspect_ratio": "wide"}, ["body", "aspect_ratio"], "like '16:9'"),
        ({"operation": "reframe", "aspect_ratio": "40:1"}, ["body", "aspect_ratio"], "1:10 to 10:1"),
        (
            {"operation": "outpaint", "prompt": "x", "expand_factor": 9},
            ["body", "expand_factor"],
            "at most 4",
        ),
        (
            {"operation": "outpaint", "prompt": "x", "size": "100x200", "source": (128, 96)},
            ["body", "size"],
            "larger than the image",
        ),
        ({"operation": "edit", "prompt": "x", "size": "10x10"}, ["body", "size"], "sides 64-4096"),
        ({"operation": "remove_background", "background": "sparkly"}, ["body", "background"], "a colour"),
        ({"operation": "inpaint", "mask_feather": -1}, ["body", "mask_feather"], "0-256"),
        (
            {"operation": "upscale", "reference_images": ["x"]},
            ["body", "reference_images"],
            "not by 'upscale'",
        ),
    ],
)
def test_option_problems_are_422_validation_errors(
    client: httpx.Client, body: dict[str, Any], loc: list[str], words: str
) -> None:
    if body.get("mask_feather") is not None:
        body["mask"] = bare(hole_mask(SMALL.size, (0, 0, 9, 9)))
    source = photo(*body.pop("source")) if "source" in body else SMALL
    response = post_edit(client, source, **body)
    assert response.status_code == 422, response.text[:300]
    detail = envelope_detail(response)
    assert detail["loc"] == loc and words in detail["msg"], detail


def test_upscale_at_the_largest_side_is_refused(client: httpx.Client) -> None:
    response = post_edit(client, flat((9, 9, 9), (4096, 64)), operation="upscale")
    assert response.status_code == 422 and "would not make it bigger" in envelope_detail(response)["msg"]


def test_unknown_and_text_models(client: httpx.Client) -> None:
    missing = post_edit(client, SMALL, model="acme/nothing", operation="upscale")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    text = post_edit(client, SMALL, model="openai/gpt-4o-mini", operation="upscale")
    assert text.status_code == 501 and text.json()["error"]["code"] == "not_implemented"


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic abc"])
def test_edits_need_the_key(server: MeshServer, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    response = httpx.post(f"{server.base_url}{EDITS}", json={"model": ANY_MODEL}, headers=headers)
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


# -- capabilities per model ---------------------------------------------------------------


def _body_for(operation: str) -> dict[str, Any]:
    body: dict[str, Any] = {"operation": operation, "prompt": "a lantern"}
    if operation == "inpaint":
        body["mask"] = bare(hole_mask(SMALL.size, (8, 8, 31, 31)))
    if operation == "mix":
        body["reference_images"] = [bare(SMALL)]
    if operation == "reframe":
        body["aspect_ratio"] = "16:9"
    return body


@pytest.mark.parametrize("model", [m["id"] for m in IMAGE_MODELS])
def test_each_model_does_exactly_the_operations_its_flags_say(client: httpx.Client, model: str) -> None:
    entry = next(m for m in IMAGE_MODELS if m["id"] == model)
    for operation in OPERATIONS:
        response = post_edit(client, SMALL, model=model, **_body_for(operation))
        if entry[f"supports_image_{operation}"]:
            assert response.status_code == 200, (operation, response.text[:300])
            continue
        assert response.status_code == 400, (operation, response.status_code)
        assert response.json()["error"]["code"] == "model_capability_not_supported"
        detail = envelope_detail(response)
        assert detail["loc"] == ["body", "operation"] and f"supports_image_{operation}" in detail["msg"]
        assert "Models that do:" in response.json()["error"]["message"]


def test_the_catalog_has_models_that_differ_in_edit_capabilities() -> None:
    flags = {tuple(m[f"supports_image_{op}"] for op in OPERATIONS) for m in IMAGE_MODELS}
    assert len(flags) >= 5
    assert all(m[f"supports_image_{op}"] for m in IMAGE_MODELS if m["id"] == ANY_MODEL for op in OPERATIONS)


def test_references_need_the_reference_capability(client: httpx.Client) -> None:
    # Stability inpaints but takes no reference images; GPT Image 1 does both.
    body = _body_for("inpaint") | {"reference_images": [bare(SMALL)]}
    refused = post_edit(client, SMALL, model="stability/sd-3.5-large", **body)
    assert refused.status_code == 400 and envelope_detail(refused)["loc"] == ["body", "reference_images"]
    assert "supports_image_reference" in refused.json()["error"]["message"]
    assert post_edit(client, SMALL, model="openai/gpt-image-1", **body).status_code == 200


def test_n_above_the_models_limit(client: httpx.Client) -> None:
    response = post_edit(client, SMALL, model="black-forest-labs/flux-kontext-pro", prompt="x", n=2)
    assert response.status_code == 400 and envelope_detail(response)["loc"] == ["body", "n"]


# -- the wire spec agrees with the server -------------------------------------------------


def test_the_wire_spec_describes_the_same_body() -> None:
    spec = yaml.safe_load((REPO / "spec" / "meshapi-openapi.yaml").read_text())
    schema = spec["components"]["schemas"]["ImageEditRequest"]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(EDIT_FIELDS)
    assert set(schema["required"]) == {"model", "image"}
    assert tuple(schema["properties"]["operation"]["enum"]) == OPERATIONS
    assert "/v1/images/edits" in spec["paths"]

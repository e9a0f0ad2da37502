"""Response parsing: items (b64, data URI, url), bad bodies, base64 and stream events."""

from __future__ import annotations

import json

import pytest

from mesh_magic.core.errors import ResponseError
from mesh_magic.core.parsing import (
    classify_event,
    decode_b64,
    decode_data_uri,
    load_json,
    parse_generation,
    parse_item,
)
from tests.support.images import b64, make_image


def test_three_item_kinds(png: bytes) -> None:
    payload = {
        "created": 1700000000,
        "data": [
            {"b64_json": b64(png), "revised_prompt": "better prompt"},
            {"url": f"data:image/png;base64,{b64(png)}"},
            {"url": "https://cdn.example.com/img.png", "revised_prompt": "  "},
        ],
        "usage": {"total_tokens": 5},
        "size": "40x20",
        "quality": "low",
        "output_format": "png",
        "ignored": True,
    }
    parsed = parse_generation(payload)
    assert parsed.created == 1700000000
    assert parsed.item_errors == []
    assert [item.source for item in parsed.items] == ["b64_json", "data_uri", "url"]
    assert [item.index for item in parsed.items] == [0, 1, 2]
    assert parsed.items[0].revised_prompt == "better prompt"
    assert parsed.items[2].revised_prompt is None  # blank revised prompt dropped
    assert decode_b64(parsed.items[0].b64 or "") == png
    assert decode_data_uri(parsed.items[1].data_uri or "") == png
    assert parsed.items[2].url == "https://cdn.example.com/img.png"
    assert parsed.usage == {"total_tokens": 5}
    assert parsed.extra == {"size": "40x20", "quality": "low", "output_format": "png"}


def test_b64_wins_over_url(png: bytes) -> None:
    item = parse_item({"b64_json": b64(png), "url": "https://x.example/a.png"}, 0)
    assert item.source == "b64_json"


def test_missing_fields_fail_per_item(png: bytes) -> None:
    parsed = parse_generation(
        {
            "data": [
                {"revised_prompt": "x"},
                {"b64_json": b64(png)},
                "junk",
                {"url": "ftp://x/y.png"},
                {"b64_json": ""},
            ]
        }
    )
    assert [i.index for i in parsed.items] == [1]
    assert [index for index, _ in parsed.item_errors] == [0, 2, 3, 4]
    messages = [str(err) for _, err in parsed.item_errors]
    assert "neither b64_json nor url" in messages[0]
    assert "not an object" in messages[1]
    assert "unusable url" in messages[2]
    assert parsed.created is None
    assert parsed.usage == {}


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"data": []}, "no images"),
        ({"created": 1}, "no 'data' list"),
        ({"data": "abc"}, "no 'data' list"),
        ([{"b64_json": "x"}], "not an object"),
        ("text", "not an object"),
    ],
)
def test_bad_bodies(payload: object, match: str) -> None:
    with pytest.raises(ResponseError, match=match):
        parse_generation(payload)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b'{"data": [', "invalid JSON"),
        (b"<!DOCTYPE html><html><body>oops</body></html>", "HTML page"),
        (b"  <html>hi</html>", "HTML page"),
        (b"\xff\xfe\x00", "invalid JSON"),
    ],
)
def test_load_json_errors(body: bytes, match: str) -> None:
    with pytest.raises(ResponseError, match=match):
        load_json(body)


def test_load_json_names_what() -> None:
    with pytest.raises(ResponseError, match="model list"):
        load_json(b"nope", what="model list")
    assert load_json(b'{"a": 1}') == {"a": 1}


def test_decode_b64_tolerates_whitespace_and_missing_padding(png: bytes) -> None:
    text = b64(png)
    wrapped = "\n".join(text[i : i + 60] for i in range(0, len(text), 60))
    assert decode_b64(wrapped) == png
    assert decode_b64(text.rstrip("=")) == png


@pytest.mark.parametrize("text", ["!!not-base64@@AAAA", "abc$", "A" * 5 + "#"])
def test_corrupt_base64(text: str) -> None:
    with pytest.raises(ResponseError, match="not valid base64"):
        decode_b64(text)


def test_data_uri_variants(png: bytes) -> None:
    assert decode_data_uri(f"data:image/png;base64,{b64(png)}") == png
    assert decode_data_uri(f"DATA:image/png;name=x.png;base64,{b64(png)}") == png
    assert decode_data_uri(f"data:;base64,{b64(png)}") == png
    with pytest.raises(ResponseError, match="not base64-encoded"):
        decode_data_uri("data:image/png,rawbytes")
    with pytest.raises(ResponseError, match="not valid base64"):
        decode_data_uri("data:image/png;base64,!!!")


def test_data_uri_jpeg(png: bytes) -> None:
    jpeg = make_image(fmt="JPEG")
    item = parse_item({"url": f"data:image/jpeg;base64,{b64(jpeg)}"}, 3)
    assert item.source == "data_uri" and item.index == 3
    assert decode_data_uri(item.data_uri or "") == jpeg


def test_stream_events() -> None:
    assert classify_event("", "[DONE]").kind == "done"
    assert classify_event("", "   ").kind == "ignore"
    assert classify_event("", "[1, 2]").kind == "ignore"
    progress = classify_event("", json.dumps({"object": "image.chunk", "status": "processing", "data": []}))
    assert progress.kind == "progress"
    final = classify_event(
        "", json.dumps({"object": "image.chunk", "status": "completed", "data": [{"b64_json": "AAAA"}]})
    )
    assert final.kind == "final" and final.payload["data"][0]["b64_json"] == "AAAA"
    error = classify_event("", json.dumps({"error": {"code": "upstream_error", "message": "x"}}))
    assert error.kind == "error"
    partial = classify_event(
        "image_generation.partial_image", json.dumps({"b64_json": "QUJD", "partial_image_index": 2})
    )
    assert (partial.kind, partial.b64, partial.index) == ("partial", "QUJD", 2)
    typed = classify_event("", json.dumps({"type": "image_generation.completed", "b64_json": "QQ"}))
    assert (typed.kind, typed.b64) == ("image", "QQ")
    assert classify_event("", json.dumps({"hello": 1})).kind == "ignore"
    with pytest.raises(ResponseError, match="not JSON"):
        classify_event("", "{broken")


def test_classify_event_tolerates_a_non_numeric_partial_index() -> None:
    event = classify_event(
        "",
        json.dumps(
            {"type": "image_generation.partial_image", "b64_json": "AAAA", "partial_image_index": "x"}
        ),
    )
    assert event.kind == "partial" and event.index == 0

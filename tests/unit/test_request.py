"""Request building: sizes, -p parsing, reserved keys, the prompt x model grid and wire bodies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mesh_magic.core.errors import InvalidOptionError
from mesh_magic.core.kv import parse_pair as parse_param
from mesh_magic.core.request import ImageRequest, build_requests, check_params
from mesh_magic.core.settings import Settings, normalise_size


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("square", "1024x1024"),
        ("landscape", "1536x1024"),
        ("portrait", "1024x1536"),
        ("SQUARE", "1024x1024"),
        (" portrait ", "1024x1536"),
        ("auto", "auto"),
        ("", "auto"),
        ("AUTO", "auto"),
        ("1024x768", "1024x768"),
        ("1024X768", "1024x768"),
        ("1024 x 768", "1024x768"),
        ("512×512", "512x512"),
        ("16x8192", "16x8192"),
    ],
)
def test_sizes(value: str, expected: str) -> None:
    assert normalise_size(value) == expected


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("huge", "not understood"),
        ("1024", "not understood"),
        ("1024x", "not understood"),
        ("x1024", "not understood"),
        ("-1x5", "not understood"),
        ("1024*1024", "not understood"),
        ("10x10", "out of range"),
        ("1024x9000", "out of range"),
        ("0x0", "out of range"),
    ],
)
def test_bad_sizes(value: str, match: str) -> None:
    with pytest.raises(InvalidOptionError, match=match) as info:
        normalise_size(value)
    assert "square" in str(info.value) or "16-8192" in str(info.value)


@pytest.mark.parametrize(
    ("item", "key", "value"),
    [
        ("seed=42", "seed", 42),
        ("guidance_scale=7.5", "guidance_scale", 7.5),
        ("watermark=false", "watermark", False),
        ("watermark=true", "watermark", True),
        ("moderation=null", "moderation", None),
        ('tags=["a", "b"]', "tags", ["a", "b"]),
        ('extra={"x": 1}', "extra", {"x": 1}),
        ('label="42"', "label", "42"),
        ("background=transparent", "background", "transparent"),
        ("aspect_ratio=16:9", "aspect_ratio", "16:9"),
        ("note=a=b", "note", "a=b"),
        ("empty=", "empty", ""),
        ("style.preset=vivid", "style.preset", "vivid"),
        ("  seed =7", "seed", 7),
    ],
)
def test_parse_param_json_or_string(item: str, key: str, value: Any) -> None:
    assert parse_param(item) == (key, value)


@pytest.mark.parametrize("item", ["seed", "=42", "", "1seed=3", "se ed=3", "seed!=3"])
def test_parse_param_rejects(item: str) -> None:
    with pytest.raises(InvalidOptionError, match="-p"):
        parse_param(item, label="-p")


@pytest.mark.parametrize(
    "key", ["prompt", "model", "n", "size", "quality", "response_format", "output_format", "stream"]
)
def test_reserved_param_keys_rejected(key: str) -> None:
    with pytest.raises(InvalidOptionError, match=f"-p {key} clashes"):
        check_params({key: 1})


def test_check_params_accepts_extra_fields() -> None:
    params = {"seed": 1, "background": "transparent", "partial_images": 2}
    assert check_params(params) == params
    with pytest.raises(InvalidOptionError, match="not a valid field name"):
        check_params({"bad key": 1})


def test_build_requests_prompt_by_model_grid(settings: Callable[..., Settings]) -> None:
    s = settings(
        model="m/one,m/two",
        n=2,
        size="landscape",
        quality="high",
        response_format="url",
        output_format="webp",
        params={"seed": 5},
    )
    requests = build_requests(["  first  ", "second"], s)
    assert [(r.prompt, r.model, r.row) for r in requests] == [
        ("first", "m/one", 0),
        ("first", "m/two", 1),
        ("second", "m/one", 2),
        ("second", "m/two", 3),
    ]
    for r in requests:
        assert r.n == 2
        assert dict(r.fields) == {
            "size": "1536x1024",
            "quality": "high",
            "response_format": "url",
            "output_format": "webp",
        }
        assert dict(r.params) == {"seed": 5}


@pytest.mark.parametrize("prompts", [[], [""], ["   \n "], ["ok", " "]])
def test_empty_prompt_is_an_error(prompts: list[str], settings: Callable[..., Settings]) -> None:
    with pytest.raises(InvalidOptionError, match="prompt is empty"):
        build_requests(prompts, settings())


def test_reserved_session_params_rejected_at_build(settings: Callable[..., Settings]) -> None:
    with pytest.raises(InvalidOptionError, match="clashes"):
        build_requests(["x"], settings(params={"n": 4}))


def test_body_contents() -> None:
    request = ImageRequest(
        prompt="a cat",
        model="m/x",
        n=3,
        fields={"size": "512x512", "quality": "low", "response_format": "url"},
        params={"seed": 7, "background": "opaque"},
    )
    assert request.body() == {
        "prompt": "a cat",
        "model": "m/x",
        "n": 3,
        "size": "512x512",
        "quality": "low",
        "response_format": "url",
        "seed": 7,
        "background": "opaque",
    }
    assert "output_format" not in request.body()
    assert "stream" not in request.body()
    streamed = ImageRequest(prompt="a", model="m", fields={"output_format": "png"}, stream=True)
    assert streamed.body()["stream"] is True
    assert streamed.body()["output_format"] == "png"
    described = streamed.describe()
    assert "prompt" not in described and "stream" not in described
    assert described["model"] == "m"

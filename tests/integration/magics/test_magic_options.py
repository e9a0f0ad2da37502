"""Every %%meshimg / %meshimg option end to end against the loopback server."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mesh_magic import ImageResult
from mesh_magic.server import MeshServer
from tests.support.published import Publications
from tests.support.servers import file_requests, generations
from tests.support.shell import run

SMALL = "-s 128x128"


def test_defaults_send_the_documented_body(shell: Any, server: MeshServer, published: Publications) -> None:
    result = run(shell, "%%meshimg\nA futuristic city skyline at sunset")
    assert isinstance(result, ImageResult)
    (request,) = generations(server)
    # Only the prompt and the model: a setting at its default is not sent (SPEC 3), so no
    # size "auto" for a model that rejects it, no response_format for gpt-image-1.
    assert request.json == {
        "prompt": "A futuristic city skyline at sunset",
        "model": "openai/gpt-image-1",
    }
    assert request.headers["authorization"] == f"Bearer {server.api_key}"
    assert request.headers["content-type"] == "application/json"
    assert len(result) == 1
    image = result[0]
    assert (image.width, image.height, image.mime_type) == (1024, 1024, "image/png")
    assert image.request_id is not None and image.request_id.startswith("req_")
    assert image.revised_prompt  # gpt-image-1 on the server revises prompts
    assert image.path is not None and image.path.exists()  # written to the store
    assert len(published) == 1
    assert published.html.count("<img ") == 1


def test_line_magic(shell: Any, server: MeshServer, published: Publications) -> None:
    result = run(shell, f'%meshimg -m google/imagen-4 {SMALL} A fox\'s den, "cosy" at dusk')
    (request,) = generations(server)
    assert request.json["prompt"] == 'A fox\'s den, "cosy" at dusk'
    assert request.json["model"] == "google/imagen-4"
    assert request.json["size"] == "128x128"
    assert len(result) == 1


def test_n(shell: Any, server: MeshServer, published: Publications) -> None:
    result = run(shell, f"%%meshimg -n 3 {SMALL}\nthree foxes")
    (request,) = generations(server)
    assert request.json["n"] == 3
    assert len(result) == 3
    assert [im.index for im in result] == [0, 1, 2]
    assert published.html.count("<img ") == 3


def test_long_option_names(shell: Any, server: MeshServer, published: Publications) -> None:
    run(shell, "%%meshimg --model google/imagen-4 --n 2 --size 96x64 --quality low --output-format jpeg\nfox")
    (request,) = generations(server)
    assert request.json == {
        "prompt": "fox",
        "model": "google/imagen-4",
        "n": 2,
        "size": "96x64",
        "quality": "low",
        "output_format": "jpeg",
    }


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("square", "1024x1024"),
        ("landscape", "1536x1024"),
        ("portrait", "1024x1536"),
        ("auto", "auto"),
        ("200x100", "200x100"),
    ],
)
def test_size(shell: Any, server: MeshServer, published: Publications, flag: str, expected: str) -> None:
    result = run(shell, f"%%meshimg -s {flag} --no-display\nfox")
    assert generations(server)[0].json["size"] == expected
    width, height = (1024, 1024) if expected == "auto" else map(int, expected.split("x"))
    assert (result[0].width, result[0].height) == (width, height)


@pytest.mark.parametrize("quality", ["low", "medium", "high", "hd", "standard", "auto"])
def test_quality(shell: Any, server: MeshServer, published: Publications, quality: str) -> None:
    run(shell, f"%%meshimg -q {quality} {SMALL} --no-display\nfox")
    assert generations(server)[0].json["quality"] == quality


@pytest.mark.parametrize(
    ("fmt", "mime"), [("png", "image/png"), ("jpeg", "image/jpeg"), ("webp", "image/webp")]
)
def test_output_format(shell: Any, server: MeshServer, published: Publications, fmt: str, mime: str) -> None:
    result = run(shell, f"%%meshimg -f {fmt} {SMALL} --no-display\nfox")
    assert generations(server)[0].json["output_format"] == fmt
    assert result[0].mime_type == mime
    assert result[0].to_pil().format == {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt]


def test_response_format_url_downloads_without_authorization(
    shell: Any, server: MeshServer, published: Publications
) -> None:
    result = run(shell, f"%%meshimg -m google/imagen-4 -n 2 --response-format url {SMALL}\nfox")
    (request,) = generations(server)
    assert request.json["response_format"] == "url"
    downloads = file_requests(server)
    assert len(downloads) == 2
    for download in downloads:
        assert download.method == "GET"
        assert download.headers["host"].startswith("localhost:")  # the image host, not the API
        assert "authorization" not in download.headers
        assert server.api_key not in json.dumps(download.headers)
    assert request.headers["host"].startswith("127.0.0.1:")
    assert len(result) == 2
    assert all(im.source == "url" for im in result)
    assert result[0].to_pil().size == (128, 128)


def test_response_format_b64_json(shell: Any, server: MeshServer, published: Publications) -> None:
    result = run(shell, f"%%meshimg -m google/imagen-4 --response-format b64_json {SMALL}\nfox")
    assert generations(server)[0].json["response_format"] == "b64_json"
    assert file_requests(server) == []
    assert result[0].source == "b64_json"


def test_data_uri_model(shell: Any, server: MeshServer, published: Publications) -> None:
    result = run(
        shell, f"%%meshimg -m meshapi/data-uri-preview --response-format url -n 2 {SMALL}\nblueprint of a fox"
    )
    (request,) = generations(server)
    assert request.json["model"] == "meshapi/data-uri-preview"
    assert file_requests(server) == []
    assert [im.source for im in result] == ["data_uri", "data_uri"]
    assert result[1].to_pil().size == (128, 128)


def test_params_json_and_string(shell: Any, server: MeshServer, published: Publications) -> None:
    run(
        shell,
        "%%meshimg -p seed=42 -p background=transparent -p guidance_scale=7.5 "
        '-p watermark=false -p \'meta={"tags": ["a", 1]}\' -p label="007" '
        f"-p 'title=a fox, at dusk' {SMALL} --no-display\nfox",
    )
    body = generations(server)[0].json
    assert body["seed"] == 42
    assert body["background"] == "transparent"
    assert body["guidance_scale"] == 7.5
    assert body["watermark"] is False
    assert body["meta"] == {"tags": ["a", 1]}
    assert body["label"] == "007"  # not JSON (leading zero), so the string as typed
    assert body["title"] == "a fox, at dusk"  # shell quotes group words and are removed


def test_param_seed_is_deterministic(shell: Any, server: MeshServer, published: Publications) -> None:
    first = run(shell, f"%%meshimg -m google/imagen-4 -p seed=7 {SMALL} --no-display\nfox")
    second = run(shell, f"%%meshimg -m google/imagen-4 -p seed=7 {SMALL} --no-display\nfox")
    assert first[0].data == second[0].data
    assert len(generations(server)) == 2  # cache is off by default


def test_out_binds_variable(shell: Any, server: MeshServer, published: Publications) -> None:
    result = run(shell, f"%%meshimg -o fox_images {SMALL}\nfox")
    assert shell.user_ns["fox_images"] is result
    assert len(shell.user_ns["fox_images"]) == 1


def test_save_writes_files_and_sidecars(
    shell: Any, server: MeshServer, published: Publications, tmp_path: Path
) -> None:
    target = tmp_path / "saved images"
    result = run(shell, f"%%meshimg -n 2 {SMALL} --save '{target}'\na red fox")
    images = sorted(target.glob("*.png"))
    sidecars = sorted(target.glob("*.json"))
    assert len(images) == 2 and len(sidecars) == 2
    assert {p.read_bytes() for p in images} == {im.data for im in result}
    for sidecar in sidecars:
        meta = json.loads(sidecar.read_text())
        assert meta["prompt"] == "a red fox"
        assert meta["model"] == "openai/gpt-image-1"
        assert meta["request_id"] == result.request_ids[0]
        assert meta["params"]["size"] == "128x128"
        assert meta["revised_prompt"]
        assert server.api_key not in sidecar.read_text()


def test_no_display_publishes_nothing(
    shell: Any, server: MeshServer, published: Publications, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(shell, f"%%meshimg --no-display -o quiet {SMALL}\nfox")
    assert published == []
    assert "ImageResult" not in capsys.readouterr().out
    assert len(result) == 1 and shell.user_ns["quiet"] is result
    # Displaying it explicitly later still works.
    run(shell, "quiet")
    assert published.html.count("<img ") == 1


def test_display_publishes_grid_with_metadata(
    shell: Any, server: MeshServer, published: Publications
) -> None:
    run(shell, "%%meshimg -m openai/gpt-image-1,google/imagen-4 -s 600x300 -p seed=3\na red fox")
    data, metadata = published[-1].data, published[-1].metadata
    html = data["text/html"]
    thumbs = re.findall(r'src="data:(image/[a-z]+);base64,([^"]+)"', html)
    assert len(thumbs) == 2
    for _, encoded in thumbs:
        with Image.open(io.BytesIO(base64.b64decode(encoded))) as img:
            assert max(img.size) <= 512
    assert "openai/gpt-image-1" in html and "google/imagen-4" in html
    assert "600x300" in html
    meta = metadata["mesh_magic"]
    assert [row["model"] for row in meta["rows"]] == ["openai/gpt-image-1", "google/imagen-4"]
    assert all(row["prompt"] == "a red fox" for row in meta["rows"])
    assert all(im["params"]["seed"] == 3 and im["request_id"] for im in meta["images"])
    assert server.api_key not in json.dumps(metadata) + html


def test_several_models_make_rows(shell: Any, server: MeshServer, published: Publications) -> None:
    result = run(
        shell,
        f"%%meshimg -m openai/gpt-image-1,google/imagen-4,black-forest-labs/"
        f"flux-schnell -n 2 {SMALL}\na lighthouse",
    )
    bodies = [r.json for r in generations(server)]
    assert sorted(b["model"] for b in bodies) == sorted(
        ["openai/gpt-image-1", "google/imagen-4", "black-forest-labs/flux-schnell"]
    )
    assert all(b["n"] == 2 and b["prompt"] == "a lighthouse" for b in bodies)
    assert result.rows == [
        ("a lighthouse", "openai/gpt-image-1"),
        ("a lighthouse", "google/imagen-4"),
        ("a lighthouse", "black-forest-labs/flux-schnell"),
    ]
    assert [(im.row, im.model) for im in result] == [
        (0, "openai/gpt-image-1"),
        (0, "openai/gpt-image-1"),
        (1, "google/imagen-4"),
        (1, "google/imagen-4"),
        (2, "black-forest-labs/flux-schnell"),
        (2, "black-forest-labs/flux-schnell"),
    ]


def test_separator_makes_prompt_rows(shell: Any, server: MeshServer, published: Publications) -> None:
    result = run(
        shell,
        f"%%meshimg -m google/imagen-4,black-forest-labs/flux-schnell {SMALL}\n"
        "  a red fox  \n---\na blue whale\n",
    )
    assert sorted((r.json["prompt"], r.json["model"]) for r in generations(server)) == [
        ("a blue whale", "black-forest-labs/flux-schnell"),
        ("a blue whale", "google/imagen-4"),
        ("a red fox", "black-forest-labs/flux-schnell"),
        ("a red fox", "google/imagen-4"),
    ]
    assert result.rows == [
        ("a red fox", "google/imagen-4"),
        ("a red fox", "black-forest-labs/flux-schnell"),
        ("a blue whale", "google/imagen-4"),
        ("a blue whale", "black-forest-labs/flux-schnell"),
    ]
    assert [im.prompt for im in result] == ["a red fox"] * 2 + ["a blue whale"] * 2


def test_interpolation_from_user_namespace(shell: Any, server: MeshServer, published: Publications) -> None:
    shell.user_ns.update({"animal": "otter", "colors": ["teal", "gold"], "ratio": 0.5})
    run(
        shell,
        f"%%meshimg {SMALL}\nAn {{animal}} in {{colors[1]}}, {{ratio:.0%}}, {{unknown}}, {{{{literal}}}}",
    )
    assert generations(server)[0].json["prompt"] == ("An otter in gold, 50%, {unknown}, {literal}")


def test_interpolation_in_line_magic(shell: Any, server: MeshServer, published: Publications) -> None:
    shell.user_ns["animal"] = "badger"
    run(shell, f"%meshimg {SMALL} a {{animal}} at night")
    assert generations(server)[0].json["prompt"] == "a badger at night"


def test_raw_disables_interpolation(shell: Any, server: MeshServer, published: Publications) -> None:
    shell.user_ns["animal"] = "otter"
    run(shell, f"%%meshimg --raw {SMALL}\nAn {{animal}} with {{{{braces}}}}")
    assert generations(server)[0].json["prompt"] == "An {animal} with {{braces}}"


def test_timeout_option(shell: Any, server: MeshServer, published: Publications) -> None:
    from mesh_magic import APITimeoutError

    server.latency = 3.0
    with pytest.raises(APITimeoutError) as info:
        run(shell, f"%%meshimg --timeout 0.3 {SMALL}\nslow fox")
    assert "0.3 s" in str(info.value)
    assert "--timeout" in info.value.hint
    assert len(generations(server)) == 1  # a timeout is not retried (it may be billed)


def test_timeout_long_enough_succeeds(shell: Any, server: MeshServer, published: Publications) -> None:
    server.latency = 0.3
    result = run(shell, f"%%meshimg --timeout 10 {SMALL} --no-display\nslow fox")
    assert len(result) == 1


def test_stream_option(shell: Any, server: MeshServer, published: Publications) -> None:
    result = run(shell, f"%%meshimg -m google/imagen-4 --stream -n 2 {SMALL}\nfox")
    (request,) = generations(server)
    assert request.json["stream"] is True
    assert request.headers["accept"] == "text/event-stream"
    assert len(result) == 2
    assert all(im.source == "stream" for im in result)


def test_result_value_and_underscore(shell: Any, server: MeshServer, published: Publications) -> None:
    result = run(shell, f"%%meshimg {SMALL}\nfox")
    assert shell.user_ns["_"] is result
    assert result.ok
    assert result.request_ids == [generations(server)[0].headers.get("x-request-id") or result[0].request_id]

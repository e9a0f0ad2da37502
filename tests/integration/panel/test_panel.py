"""The widget panel driven from code, against a real MeshServer over loopback.

Like ipywidgets' own tests: set `.value`, `click()`, then assert on widget
state and on what the server received. No browser, no kernel.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mesh_magic.core import config as _config
from mesh_magic.core.results import ImageResult
from mesh_magic.server import MODELS, Fault, MeshServer
from mesh_magic.widget_panel import ImagePanel, parse_params
from tests.support.servers import generation_bodies

IMAGE_MODEL_IDS = sorted(m["id"] for m in MODELS if "image" in m["output_modalities"])

Waiter = Callable[..., Any]


def tiles(p: ImagePanel) -> list[Any]:
    return list(p.gallery.children)


def shown(widget: Any) -> str:
    """The text an HTML widget shows: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", widget.value))


def caption(tile: Any) -> str:
    return shown(tile.children[1])


def tile_button(tile: Any, name: str) -> Any:
    """The tile's button with class mesh-panel-<name> (save, edit, upscale, ...)."""
    [button] = [b for b in tile.children[2].children if f"mesh-panel-{name}" in b._dom_classes]
    return button


def generate(p: ImagePanel, prompt: str, timeout: float = 15.0, **values: Any) -> ImageResult:
    """Fill the form like a user would, press Generate and wait for the result."""
    p.prompt.value = prompt
    for name, value in values.items():
        getattr(p, name).value = value
    before = len(p.results)
    p.generate_button.click()
    p.wait(timeout)
    assert len(p.results) == before + 1, shown(p.errors)
    return p.results[-1]


def test_generate_sends_the_form_and_fills_the_gallery(
    make_panel: Callable[..., ImagePanel], server: MeshServer
) -> None:
    p = make_panel()
    seen: list[ImageResult] = []
    p.on_result(seen.append)

    result = generate(
        p,
        "a red fox in the snow",
        model="google/imagen-4",
        n=2,
        size="512x512",
        quality="low",
        output_format="png",
        params="seed=7\nbackground=transparent",
    )

    [body] = generation_bodies(server)
    assert body["prompt"] == "a red fox in the snow"
    assert body["model"] == "google/imagen-4"
    assert body["n"] == 2
    assert body["size"] == "512x512"
    assert body["quality"] == "low"
    assert body["output_format"] == "png"
    assert body["seed"] == 7 and body["background"] == "transparent"

    assert len(result) == 2 and not result.errors and not result.interrupted
    assert p.results == [result] and seen == [result]
    assert len(tiles(p)) == 2
    for tile in tiles(p):
        picture = tile.children[0]
        assert picture.value and picture.format in ("png", "jpeg")
        assert "google/imagen-4" in caption(tile) and "512x512" in caption(tile)
    assert "Done: 2/2 images" in shown(p.status)
    assert shown(p.errors) == ""
    assert not p.busy
    assert not p.generate_button.disabled and p.cancel_button.disabled


def test_gallery_shows_the_newest_first(make_panel: Callable[..., ImagePanel], server: MeshServer) -> None:
    p = make_panel(n=1, size="256x256")
    first = generate(p, "a cat", model="openai/gpt-image-1")
    second = generate(p, "a dog", model="black-forest-labs/flux-schnell")

    assert p.results == [first, second]
    assert [b["model"] for b in generation_bodies(server)] == [
        "openai/gpt-image-1",
        "black-forest-labs/flux-schnell",
    ]
    assert "flux-schnell" in caption(tiles(p)[0])
    assert "gpt-image-1" in caption(tiles(p)[1])
    # gpt-image-1 revises prompts on this server: the caption shows the revision.
    assert "rendered as a detailed digital illustration" in caption(tiles(p)[1])


def test_comma_separated_models_compare_side_by_side(
    make_panel: Callable[..., ImagePanel], server: MeshServer
) -> None:
    p = make_panel(size="256x256")
    result = generate(p, "a kite", model="openai/gpt-image-1, google/imagen-4")
    assert sorted(b["model"] for b in generation_bodies(server)) == ["google/imagen-4", "openai/gpt-image-1"]
    assert len(result) == 2 and len(tiles(p)) == 2


def test_core_notes_reach_the_status_line(make_panel: Callable[..., ImagePanel], server: MeshServer) -> None:
    p = make_panel(size="256x256")
    result = generate(p, "two from a one-image model", model="openai/dall-e-3", n=2)
    assert len(result) == 2 and len(tiles(p)) == 2
    assert "one image per request" in shown(p.status)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("prompt", "   ", "prompt is empty"),
        ("size", "huge", "size 'huge' is not understood"),
        ("params", "seed", "expected KEY=VALUE"),
        ("params", "[1, 2]", "Extra params"),
        ("params", '{"seed": ', "not valid JSON"),
        ("params", "n=3", "use the panel's own field"),
        ("model", "  ", "model is empty"),
    ],
)
def test_invalid_input_is_shown_and_nothing_is_sent(
    make_panel: Callable[..., ImagePanel], server: MeshServer, field: str, value: str, message: str
) -> None:
    p = make_panel()
    p.prompt.value = "a valid prompt"
    getattr(p, field).value = value
    p.generate_button.click()

    assert message in shown(p.errors)
    assert "Not sent" in shown(p.status)
    assert generation_bodies(server) == []
    assert not p.busy and not p.generate_button.disabled
    assert p.results == []


@pytest.mark.parametrize(
    ("status", "hint"),
    [(401, "MESHAPI_API_KEY"), (402, "top up or raise the cap")],
)
def test_api_error_shows_message_and_hint(
    make_panel: Callable[..., ImagePanel], server: MeshServer, status: int, hint: str
) -> None:
    server.add_fault(Fault(kind="status", status=status))
    p = make_panel()
    result = generate(p, "a blue whale")

    assert len(result) == 0 and len(result.errors) == 1
    error = result.errors[0].error
    assert f"HTTP {status}" in shown(p.errors)
    assert error.message in shown(p.errors)
    assert hint in shown(p.errors) and hint in error.hint
    assert "Failed" in shown(p.status)
    assert tiles(p) == []
    assert not p.generate_button.disabled
    # The key never reaches the widgets.
    assert server.api_key and server.api_key not in shown(p.errors) + shown(p.status)


def test_cancel_during_a_slow_generation_returns_at_once(
    make_panel: Callable[..., ImagePanel], server: MeshServer, wait_for: Waiter
) -> None:
    server.latency = 3.0
    p = make_panel()
    p.prompt.value = "a slow sunrise"
    p.generate_button.click()
    wait_for(lambda: server.in_flight == 1, 5, "the request to reach the server")
    assert p.busy and p.generate_button.disabled and not p.cancel_button.disabled

    started = time.monotonic()
    p.cancel_button.click()
    assert time.monotonic() - started < 0.5

    assert not p.busy
    assert "Cancelled" in shown(p.status) and "kept 0 of 1" in shown(p.status)
    assert p.results[-1].interrupted and len(p.results[-1]) == 0
    assert not p.generate_button.disabled and p.cancel_button.disabled
    # The HTTP request was aborted, not left running in the background.
    wait_for(lambda: server.in_flight == 0, 2, "the server to see the request dropped")
    time.sleep(TICK_GRACE)
    assert "Cancelled" in shown(p.status)  # no late progress update overwrote it


# Longer than the panel's progress tick, so a stale update would have shown by then.
TICK_GRACE = 0.7


def test_cancel_keeps_the_images_that_arrived(
    make_panel: Callable[..., ImagePanel], server: MeshServer, wait_for: Waiter
) -> None:
    server.add_fault(Fault(kind="latency", delay=5.0, model="google/imagen-4"))
    p = make_panel(size="256x256")
    seen: list[ImageResult] = []
    p.on_result(seen.append)
    p.prompt.value = "two models, one slow"
    p.model.value = "openai/gpt-image-1,google/imagen-4"
    p.generate_button.click()
    wait_for(lambda: "1/2 images" in shown(p.status), 5, "the fast model's image")

    p.cancel_button.click()

    result = p.results[-1]
    assert result.interrupted and [im.model for im in result] == ["openai/gpt-image-1"]
    assert seen == [result]
    assert "kept 1 of 2" in shown(p.status)
    assert len(tiles(p)) == 1 and "gpt-image-1" in caption(tiles(p)[0])


def test_double_click_sends_one_request(
    make_panel: Callable[..., ImagePanel], server: MeshServer, wait_for: Waiter
) -> None:
    server.latency = 0.5
    p = make_panel()
    p.prompt.value = "only once"
    p.generate_button.click()
    p.generate_button.click()
    assert p.generate_button.disabled
    p.wait(10)
    p.generate_button.click()  # after it finished, Generate works again
    p.wait(10)

    assert len(generation_bodies(server)) == 2
    assert len(p.results) == 2
    assert server.max_in_flight == 1


def test_model_list_comes_from_the_server(
    make_panel: Callable[..., ImagePanel], server: MeshServer, wait_for: Waiter
) -> None:
    p = make_panel()
    wait_for(lambda: len(p.model.options) > 1, 5, "the model list")

    assert sorted(p.model.options) == IMAGE_MODEL_IDS
    assert "openai/gpt-4o-mini" not in p.model.options  # a text model
    assert "image models" in shown(p.model_note)
    listing = [r for r in server.requests if r.path == "/v1/models"]
    assert len(listing) == 1 and listing[0].query == "type=image"
    # The note shows the price of the picked model when the list knows it.
    p.model.value = "openai/gpt-image-1"
    assert "$0.04 per image" in shown(p.model_note)
    assert "can edit inpaint mix ref" in shown(p.model_note)  # capabilities as compact marks
    # Any id may still be typed: the Combobox does not insist on its list.
    p.model.value = "someone/brand-new-model"
    assert p.options()["model"] == "someone/brand-new-model"


@pytest.mark.parametrize("failure", ["status", "unreachable"])
def test_model_list_failure_falls_back_to_the_configured_model(
    make_panel: Callable[..., ImagePanel], server: MeshServer, wait_for: Waiter, failure: str
) -> None:
    _config.configure(model="acme/own-model")
    if failure == "status":
        server.add_fault(Fault(kind="status", status=500, path="/v1/models"))
        p = make_panel()
    else:
        with MeshServer() as gone:
            url = gone.base_url
        p = make_panel(base_url=url)

    wait_for(lambda: "unavailable" in shown(p.model_note), 10, "the fallback note")
    assert list(p.model.options) == ["acme/own-model"]
    assert p.model.value == "acme/own-model"
    assert "type any model id" in shown(p.model_note)
    assert shown(p.errors) == ""  # a note, not an error: the panel still works


def test_save_writes_the_full_image_and_a_sidecar(
    make_panel: Callable[..., ImagePanel], tmp_path: Path
) -> None:
    p = make_panel(size="256x256")
    result = generate(p, "a saved lighthouse")
    save_button = tile_button(tiles(p)[0], "save")
    p.save_dir.value = str(tmp_path / "picked")

    save_button.click()
    save_button.click()  # twice: the second copy must not overwrite the first

    saved = sorted((tmp_path / "picked").glob("*.png"))
    assert len(saved) == 2
    assert saved[0].read_bytes() == result[0].data
    sidecar = json.loads(saved[0].with_suffix(".json").read_text())
    assert sidecar["prompt"] == "a saved lighthouse" and sidecar["model"] == result[0].model
    assert save_button.description == "Saved"
    assert "Saved" in shown(p.status)


def test_save_defaults_to_mesh_images_in_the_working_folder(
    make_panel: Callable[..., ImagePanel], tmp_path: Path
) -> None:
    p = make_panel(size="256x256")
    generate(p, "a default folder")
    assert p.save_dir.value == "./mesh_images"
    tile_button(tiles(p)[0], "save").click()
    assert len(list((tmp_path / "mesh_images").glob("*.png"))) == 1


def test_apply_to_session_writes_the_panel_values(make_panel: Callable[..., ImagePanel]) -> None:
    p = make_panel()
    p.model.value = "google/imagen-4"
    p.n.value = 3
    p.size.value = "landscape"
    p.quality.value = "high"
    p.params.value = '{"seed": 5}'
    p.apply_button.click()

    config = _config.session()
    assert (config.model, config.n, config.size, config.quality) == (
        "google/imagen-4",
        3,
        "1536x1024",
        "high",
    )
    assert config.params == {"seed": 5}
    assert _config.resolve().sources["model"] == "session"
    assert "Session defaults set" in shown(p.status)


def test_apply_to_session_with_bad_values_changes_nothing(make_panel: Callable[..., ImagePanel]) -> None:
    p = make_panel()
    p.model.value = "google/imagen-4"
    p.size.value = "enormous"
    p.apply_button.click()
    assert _config.session().model is None
    assert "size 'enormous'" in shown(p.errors)
    assert "not changed" in shown(p.status)


def test_defaults_come_from_the_session_and_can_be_overridden(make_panel: Callable[..., ImagePanel]) -> None:
    _config.configure(model="google/imagen-4", n=3, quality="low", params={"seed": 9})
    p = make_panel()
    assert (p.model.value, p.n.value, p.quality.value) == ("google/imagen-4", 3, "low")
    assert p.params.value == "seed=9"
    q = make_panel(n=2, size="portrait", output_format="webp")
    assert (q.model.value, q.n.value, q.size.value) == ("google/imagen-4", 2, "1024x1536")
    assert q.output_format.value == "webp"


def test_a_failing_on_result_callback_is_shown_not_raised(make_panel: Callable[..., ImagePanel]) -> None:
    p = make_panel(size="256x256")

    @p.on_result
    def broken(result: ImageResult) -> None:
        raise RuntimeError("my hook broke")

    generate(p, "a hook test")
    assert "my hook broke" in shown(p.errors)
    assert not p.busy and len(tiles(p)) == 1
    p.on_result(broken, remove=True)
    generate(p, "again")
    assert shown(p.errors) == ""


def test_parse_params_reads_json_and_key_value_lines() -> None:
    assert parse_params("") == {}
    assert parse_params('{"seed": 1, "style": "vivid"}') == {"seed": 1, "style": "vivid"}
    assert parse_params("seed=1\n# a comment\n\nstyle=vivid\nwatermark=false") == {
        "seed": 1,
        "style": "vivid",
        "watermark": False,
    }


def test_the_panel_displays_as_a_widget(make_panel: Callable[..., ImagePanel]) -> None:
    p = make_panel()
    bundle = p._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == p.root.model_id
    assert bundle["text/plain"] == "<ImagePanel idle, 0 results>"
    for name in ("prompt", "model", "generate", "cancel", "status", "errors", "gallery"):
        assert any(f"mesh-panel-{name}" in w._dom_classes for w in _walk(p.root)), name


def _walk(widget: Any) -> list[Any]:
    found = [widget]
    for child in getattr(widget, "children", ()):
        found += _walk(child)
    return found


def test_meshimg_panel_magic_returns_a_panel(server: MeshServer) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "mesh_magic")
        shown = shell.run_line_magic("meshimg_panel", "")
        assert isinstance(shown, ImagePanel)
        shown.close()
    finally:
        InteractiveShell.clear_instance()


def test_mesh_magic_panel_is_the_function_even_after_importing_its_module() -> None:
    import mesh_magic
    import mesh_magic.widget_panel  # noqa: F401  (a private module: does not shadow the export)

    made = mesh_magic.panel(n=2)
    assert isinstance(made, ImagePanel) and made.n.value == 2
    made.close()


def test_load_ext_does_not_import_ipywidgets() -> None:
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.instance().run_line_magic('load_ext', 'mesh_magic')\n"
        "assert 'ipywidgets' not in sys.modules, 'ipywidgets imported at %load_ext'\n"
        "import mesh_magic\n"
        "mesh_magic.panel\n"
        "assert 'ipywidgets' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)

"""%meshimg_config, %config MeshImg, configure() and %meshimg_models against the server."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from IPython.core.error import UsageError

import mesh_magic
from mesh_magic.core import config as _config
from mesh_magic.render.tables import ConfigTable, ModelTable
from mesh_magic.server import MODELS, MeshServer
from tests.support.published import Publications
from tests.support.servers import generations
from tests.support.shell import run

IMAGE_MODELS = sorted(m["id"] for m in MODELS if "image" in m["output_modalities"])


def config_rows(shell: Any) -> dict[str, tuple[str, str]]:
    table = run(shell, "%meshimg_config")
    assert isinstance(table, ConfigTable)
    return {name: (value, source) for name, value, source in table.rows}


# -- %meshimg_models ---------------------------------------------------------------------------


def test_models_lists_image_models_with_prices(shell: Any, server: MeshServer) -> None:
    table = run(shell, "%meshimg_models")
    assert isinstance(table, ModelTable)
    assert [row[0] for row in table.rows] == IMAGE_MODELS
    assert "openai/gpt-4o-mini" not in repr(table)
    text = repr(table)
    assert "openai/gpt-image-1" in text and "$0.040" in text
    assert "black-forest-labs/flux-schnell" in text and "$0.003" in text
    assert "meshapi/data-uri-preview" in text and "—" in text  # no known price
    html = table._repr_html_()
    assert html.count("<tr>") == len(IMAGE_MODELS) + 1
    assert "Google: Imagen 4" in html
    (request,) = server.requests
    assert (request.method, request.path, request.query) == ("GET", "/v1/models", "type=image")
    assert request.headers["authorization"] == f"Bearer {server.api_key}"


def test_models_filter_by_text(shell: Any, server: MeshServer) -> None:
    table = run(shell, "%meshimg_models flux")
    assert [row[0] for row in table.rows] == [
        "black-forest-labs/flux-1.1-pro",
        "black-forest-labs/flux-kontext-pro",
        "black-forest-labs/flux-schnell",
    ]
    assert [row[0] for row in run(shell, "%meshimg_models IMAGEN").rows] == ["google/imagen-4"]
    # Text matches the display name too.
    assert [row[0] for row in run(shell, "%meshimg_models Stable Diffusion").rows] == [
        "stability/sd-3.5-large"
    ]
    assert [row[0] for row in run(shell, "%meshimg_models SDXL").rows] == ["stability/sdxl-turbo"]
    empty = run(shell, "%meshimg_models no-such-thing")
    assert empty.rows == []
    assert "No image models match 'no-such-thing'" in repr(empty)


def test_models_errors(shell: Any, server: MeshServer) -> None:
    _config.session().set_api_key("rsk_bad_000000000000000")
    with pytest.raises(mesh_magic.AuthenticationError):
        run(shell, "%meshimg_models")


# -- %meshimg_config ---------------------------------------------------------------------------


def test_config_shows_masked_key_and_sources(
    shell: Any, server: MeshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = config_rows(shell)
    assert rows["api_key"] == ("rsk_…cdef", "session")
    assert rows["base_url"] == (server.base_url, "session")
    assert rows["model"] == ("openai/gpt-image-1", "default")
    assert rows["store_dir"][1] == "env MESHIMG_STORE_DIR"
    table = run(shell, "%meshimg_config")
    for text in (repr(table), table._repr_html_()):
        assert server.api_key not in text
        assert "rsk_…cdef" in text
        assert "env MESHIMG_STORE_DIR" in text

    _config.session().set_api_key(None)
    monkeypatch.setenv("MESH_API_KEY", "rsk_from_env_00000000wxyz")
    assert config_rows(shell)["api_key"] == ("rsk_…wxyz", "env MESH_API_KEY")
    monkeypatch.delenv("MESH_API_KEY")
    assert config_rows(shell)["api_key"] == ("(not set)", "not set")


def test_config_sets_session_values(shell: Any, server: MeshServer, published: Publications) -> None:
    assert (
        run(
            shell,
            '%meshimg_config model=google/imagen-4 n=2 size=128x128 quality=low cache=on params={"seed":5}',
        )
        is None
    )
    session = _config.session()
    assert (session.model, session.n, session.size, session.quality, session.cache) == (
        "google/imagen-4",
        2,
        "128x128",
        "low",
        "on",
    )
    assert session.params == {"seed": 5}
    rows = config_rows(shell)
    assert rows["model"] == ("google/imagen-4", "session")
    assert rows["n"] == ("2", "session")
    # And the next generation uses them.
    run(shell, "%%meshimg --no-display\nfox")
    body = generations(server)[0].json
    assert (body["model"], body["n"], body["size"], body["quality"], body["seed"]) == (
        "google/imagen-4",
        2,
        "128x128",
        "low",
        5,
    )


def test_config_quoted_values(shell: Any, server: MeshServer) -> None:
    run(shell, "%meshimg_config model=\"google/imagen-4\" 'store_dir=/tmp/a dir' size='square'")
    assert _config.session().model == "google/imagen-4"
    assert _config.session().store_dir == "/tmp/a dir"
    assert _config.session().size == "1024x1024"
    run(shell, '%meshimg_config params={"seed":5,"style":"vivid"} cache="on"')
    assert _config.session().params == {"seed": 5, "style": "vivid"}
    assert _config.session().cache == "on"


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("modle=x", "Unknown setting 'modle'"),
        ("model", "takes KEY=VALUE pairs"),
        ("n=0", "n must"),
        ("quality=ultra", "quality must be one of"),
        ("cache=sometimes", "cache must be one of"),
        ("base_url=ftp://x", "https://"),
        ("--nope", "unrecognized arguments"),
    ],
)
def test_config_rejects_bad_values(shell: Any, server: MeshServer, line: str, match: str) -> None:
    _config.configure(n=3)
    with pytest.raises(UsageError, match=match):
        run(shell, f"%meshimg_config {line}")
    assert _config.session().n == 3
    assert _config.session().quality is None


def test_config_reset(shell: Any, server: MeshServer, capsys: pytest.CaptureFixture[str]) -> None:
    run(shell, "%meshimg_config model=google/imagen-4 n=3")
    run(shell, "%meshimg_config --reset")
    assert "reset" in capsys.readouterr().out
    assert _config.session().session_values() == {}
    assert _config.session().api_key is None
    rows = config_rows(shell)
    assert rows["model"] == ("openai/gpt-image-1", "default")
    assert rows["api_key"] == ("(not set)", "not set")


def test_config_api_key_warns(shell: Any, server: MeshServer) -> None:
    new_key = "rsk_typed_in_a_cell_000000beef"
    with pytest.warns(UserWarning, match="notebook source") as record:
        run(shell, f"%meshimg_config api_key={new_key}")
    assert "--login" in str(record[0].message)
    assert new_key not in str(record[0].message)
    session_key = _config.session().api_key
    assert session_key is not None and session_key.reveal() == new_key
    assert config_rows(shell)["api_key"] == ("rsk_…beef", "session")


def test_config_login_uses_hidden_prompt(
    shell: Any, server: MeshServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return f"  {server.api_key}\n"

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    _config.session().set_api_key(None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # --login must not warn about the notebook source
        run(shell, "%meshimg_config --login")
    assert len(prompts) == 1 and "hidden" in prompts[0]
    out = capsys.readouterr().out
    assert "rsk_…cdef" in out and server.api_key not in out
    assert _config.session().api_key is not None
    assert len(run(shell, "%%meshimg -s 128x128 --no-display\nfox")) == 1


def test_config_login_empty_changes_nothing(
    shell: Any, server: MeshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "   ")
    with pytest.raises(UsageError, match="No key entered"):
        run(shell, "%meshimg_config --login")
    assert _config.session().api_key is not None
    assert _config.session().api_key.reveal() == server.api_key


# -- %config MeshImg / configure() / %meshimg_config agree ----------------------------------------


def test_percent_config_configure_and_meshimg_config_agree(
    shell: Any, server: MeshServer, published: Publications
) -> None:
    run(shell, "%config MeshImg.model = 'google/imagen-4'")
    assert _config.session().model == "google/imagen-4"
    assert run(shell, "%config MeshImg.model") == "google/imagen-4"
    assert config_rows(shell)["model"] == ("google/imagen-4", "session")
    assert _config.resolve().model == "google/imagen-4"

    mesh_magic.configure(model="black-forest-labs/flux-schnell", n=2)
    assert run(shell, "%config MeshImg.model") == "black-forest-labs/flux-schnell"
    assert run(shell, "%config MeshImg.n") == 2
    assert config_rows(shell)["n"] == ("2", "session")

    run(shell, "%meshimg_config model=stability/sd-3.5-large")
    assert run(shell, "%config MeshImg.model") == "stability/sd-3.5-large"
    assert _config.resolve().model == "stability/sd-3.5-large"

    run(shell, "%%meshimg -s 128x128 --no-display\nfox")
    body = generations(server)[0].json
    assert (body["model"], body["n"]) == ("stability/sd-3.5-large", 2)


def test_the_registered_configurable_is_the_session(shell: Any, server: MeshServer) -> None:
    mesh_img = [c for c in shell.configurables if type(c).__name__ == "MeshImg"]
    assert mesh_img == [_config.session()]
    # The server fixture configured the session before %load_ext: those values survived.
    assert _config.session().base_url == server.base_url


def test_percent_config_rejects_bad_enum(
    shell: Any, server: MeshServer, caplog: pytest.LogCaptureFixture
) -> None:
    run(shell, "%config MeshImg.quality = 'ultra'")
    assert any("'ultra'" in r.getMessage() and "quality" in r.getMessage() for r in caplog.records)
    assert _config.session().quality is None
    run(shell, "%config MeshImg.quality = 'hd'")
    assert _config.session().quality == "hd"


def test_percent_config_help_lists_traits_without_key(
    shell: Any, server: MeshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run(shell, "%config MeshImg")
    out = capsys.readouterr().out
    for name in ("MeshImg.model", "MeshImg.base_url", "MeshImg.cache", "MeshImg.display_max_px"):
        assert name in out
    assert "api_key" not in out.replace("api_key=", "")  # not a trait
    assert server.api_key not in out


def test_call_options_beat_session(shell: Any, server: MeshServer, published: Publications) -> None:
    run(shell, "%config MeshImg.model = 'google/imagen-4'")
    run(shell, "%config MeshImg.size = '128x128'")
    run(shell, "%%meshimg -m black-forest-labs/flux-schnell --no-display\nfox")
    body = generations(server)[0].json
    assert body["model"] == "black-forest-labs/flux-schnell"
    assert body["size"] == "128x128"


# --- what a new user typed (offline: no server needed) ---------------------------------------------


def test_config_accepts_json_params_with_spaces(offline_shell: Any) -> None:
    # The README's own example value for `params` is {"seed": 7}, with a space.
    offline_shell.run_line_magic("meshimg_config", 'params={"seed": 7, "style": "vivid"} n=2')
    settings = _config.resolve()
    assert settings.params == {"seed": 7, "style": "vivid"}
    assert settings.n == 2


def test_config_quoted_string_values(offline_shell: Any) -> None:
    offline_shell.run_line_magic("meshimg_config", "store_dir='/tmp/my store' cache='on'")
    settings = _config.resolve()
    assert str(settings.store_dir) == "/tmp/my store"
    assert settings.cache == "on"


def test_config_stray_word_is_a_usage_error(offline_shell: Any) -> None:
    with pytest.raises(UsageError, match="KEY=VALUE"):
        offline_shell.run_line_magic("meshimg_config", "model=google/imagen-4 oops")


def test_config_flags_still_work(offline_shell: Any) -> None:
    offline_shell.run_line_magic("meshimg_config", "n=3")
    offline_shell.run_line_magic("meshimg_config", "--reset model=google/imagen-4")
    settings = _config.resolve()
    assert settings.n == 1 and settings.model == "google/imagen-4"


def test_reload_ext_keeps_one_config_with_the_session_values(shell: Any) -> None:
    from mesh_magic.core.config import MeshImg

    shell.run_line_magic("config", "MeshImg.model = 'google/imagen-4'")
    shell.run_line_magic("reload_ext", "mesh_magic")
    configs = [c for c in shell.configurables if isinstance(c, MeshImg)]
    assert len(configs) == 1
    assert configs[0].model == "google/imagen-4"

"""Front-end review: things a new user typed that went wrong, pinned as tests."""

from __future__ import annotations

from typing import Any

import pytest

from mesh_magic.core import config as _config
from mesh_magic.magics import GenerateMagics as MeshImgMagics
from mesh_magic.magics.args import split_line as _split_line
from mesh_magic.render.tables import ConfigTable, ModelTable


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
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="KEY=VALUE"):
        offline_shell.run_line_magic("meshimg_config", "model=google/imagen-4 oops")


def test_config_flags_still_work(offline_shell: Any) -> None:
    offline_shell.run_line_magic("meshimg_config", "n=3")
    offline_shell.run_line_magic("meshimg_config", "--reset model=google/imagen-4")
    settings = _config.resolve()
    assert settings.n == 1 and settings.model == "google/imagen-4"


def test_history_text_with_apostrophe(offline_shell: Any) -> None:
    offline_shell.run_line_magic("meshimg", "--no-display A fox's den")
    found = offline_shell.run_line_magic("meshimg_history", "5 fox's")
    assert len(found) == 1 and found[0].prompt == "A fox's den"


def test_line_prompt_in_quotes_is_unquoted() -> None:
    parser = MeshImgMagics.meshimg.parser
    assert _split_line('-s square "A paper boat"', parser) == (["-s", "square"], "A paper boat")
    # Only a prompt that is one quoted string loses its quotes.
    assert _split_line("'A fox's den'", parser) == ([], "'A fox's den'")
    assert _split_line('"Hi" she said', parser) == ([], '"Hi" she said')


def test_tables_are_left_aligned() -> None:
    # JupyterLab, Notebook 7 and nbconvert right-align table cells by default,
    # which makes ids and paths hard to read.
    settings = _config.resolve({"base_url": "offline"})
    config_html = ConfigTable(settings)._repr_html_()
    models_html = ModelTable([{"id": "a/b", "name": "B", "image_output_usd_per_image": 0.04}])
    for table in (config_html, models_html._repr_html_()):
        assert "text-align:left" in table.replace(" ", "")


def test_reload_ext_keeps_one_config_with_the_session_values(shell: Any) -> None:
    from mesh_magic.core.config import MeshImg

    shell.run_line_magic("config", "MeshImg.model = 'google/imagen-4'")
    shell.run_line_magic("reload_ext", "mesh_magic")
    configs = [c for c in shell.configurables if isinstance(c, MeshImg)]
    assert len(configs) == 1
    assert configs[0].model == "google/imagen-4"

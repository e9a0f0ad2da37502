"""The %meshimg_config and %meshimg_models tables: text and HTML, the key masked."""

from __future__ import annotations

import re

from mesh_magic.core import config as _config
from mesh_magic.core.catalog import records
from mesh_magic.core.config import resolve
from mesh_magic.render.tables import ConfigTable, ModelTable


def test_config_table_text_and_html() -> None:
    _config.configure(model="google/imagen-4")
    _config.session().set_api_key("rsk_table_key_00000000a1b2")
    table = ConfigTable(resolve())
    names = [row[0] for row in table.rows]
    assert names[0] == "api_key" and set(_config.SETTING_NAMES) <= set(names)
    text = repr(table)
    assert "rsk_…a1b2" in text and "rsk_table_key" not in text
    assert re.search(r"model\s+google/imagen-4\s+\(session\)", text)
    assert re.search(r"n\s+1\s+\(default\)", text)
    html = table._repr_html_()
    assert "<table>" in html and "rsk_table_key" not in html
    assert html.count("<tr>") == len(table.rows) + 1


def test_model_table_text_and_html() -> None:
    table = ModelTable(
        records(
            [
                {
                    "id": "a/cheap",
                    "name": "Cheap <model>",
                    "image_output_usd_per_image": 0.0025,
                    "supports_image_edit": True,
                    "supports_image_reference": True,
                },
                {"id": "b/nested", "pricing": {"price_per_image": "0.5"}},
                {"id": "c/unknown"},
                {"id": "d/free", "is_free": True, "supports_image_remove_background": True},
            ]
        )
    )
    text = repr(table)
    assert "a/cheap" in text and "$0.003" in text  # rounded to a tenth of a cent
    assert re.search(r"a/cheap\s+\$0.003\s+edit ref", text)  # capabilities as compact marks
    assert "$0.500" in text
    assert re.search(r"c/unknown\s+—", text)
    assert re.search(r"d/free\s+free\s+rm-bg", text)
    html = table._repr_html_()
    assert "Cheap &lt;model&gt;" in html and "<model>" not in html
    assert "<th style='text-align:left'>can</th>" in html
    assert repr(ModelTable([], "zzz")) == "No image models match 'zzz'."
    assert repr(ModelTable([])) == "No image models."


def test_tables_are_left_aligned() -> None:
    # JupyterLab, Notebook 7 and nbconvert right-align table cells by default,
    # which makes ids and paths hard to read.
    settings = _config.resolve({"base_url": "offline"})
    config_html = ConfigTable(settings)._repr_html_()
    models_html = ModelTable(records([{"id": "a/b", "name": "B", "image_output_usd_per_image": 0.04}]))
    for table in (config_html, models_html._repr_html_()):
        assert "text-align:left" in table.replace(" ", "")

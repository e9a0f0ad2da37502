"""Small HTML helpers shared by every renderer: fonts, status colours, tables, escaping."""

from __future__ import annotations

import html

FONT = "system-ui,-apple-system,'Segoe UI',sans-serif"
STATUS_COLOURS = {"ok": "#1e8449", "warn": "#b9770e", "error": "#c0392b", "busy": "inherit"}
ERROR_COLOUR = STATUS_COLOURS["error"]


def status_html(text: str, kind: str = "") -> str:
    colour = STATUS_COLOURS.get(kind, "inherit")
    return f'<span style="color:{colour}">{html.escape(text, quote=False)}</span>'


def html_table(head: list[str], rows: list[list[str]], right: int | None = None) -> str:
    """Cells left-aligned (JupyterLab, Notebook 7 and nbconvert right-align them by default)."""

    def tr(tag: str, cells: list[str]) -> str:
        return (
            "<tr>"
            + "".join(
                f"<{tag} style='text-align:{'right' if col == right else 'left'}'>{text}</{tag}>"
                for col, text in enumerate(cells)
            )
            + "</tr>"
        )

    return "<table>" + tr("th", head) + "".join(tr("td", row) for row in rows) + "</table>"


def shorten(text: str, limit: int = 120) -> str:
    """One line of at most `limit` characters, whitespace collapsed."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

"""Small HTML helpers shared by every renderer: theme colours, fonts, tables, escaping.

Colours are JupyterLab's theme variables (Notebook 7 and nbconvert's lab template
have them too), so output follows the light or dark theme. Each has a fallback for
front ends without them (VS Code, Colab): a mid tone that reads on white and on
near-black alike. Text itself is never given a colour of its own (it inherits the
theme's), and backgrounds are translucent tints, never a fixed light or dark fill.
"""

from __future__ import annotations

import html

FONT = "var(--jp-ui-font-family, system-ui, -apple-system, 'Segoe UI', sans-serif)"
BORDER = "var(--jp-border-color2, rgba(128, 128, 128, .4))"
STATUS_COLOURS = {
    "ok": "var(--jp-success-color1, #2e9d4f)",
    "warn": "var(--jp-warn-color1, #d4880f)",
    "error": "var(--jp-error-color1, #e04a3a)",
    "busy": "inherit",
}
ERROR_COLOUR = STATUS_COLOURS["error"]
WARN_COLOUR = STATUS_COLOURS["warn"]
# A tint, not a fill: it darkens a light page and lightens a dark one just enough.
ERROR_TINT = "rgba(224, 74, 58, .10)"
ERROR_BORDER = "var(--jp-error-color2, rgba(224, 74, 58, .55))"


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

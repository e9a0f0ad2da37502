"""Rewrite the README's generated sections (the settings table) from the code.

    .venv/bin/python scripts/update_readme.py          # rewrite README.md in place
    .venv/bin/python scripts/update_readme.py --check  # exit 1 if README.md is out of date

tests/architecture/test_readme.py runs the check, so the table and the code never disagree.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
SECTION = re.compile(r"(<!-- settings-table:start -->\n)(.*?)(<!-- settings-table:end -->)", re.S)


def updated(text: str) -> str:
    from mesh_magic.core.settings import settings_markdown

    if not SECTION.search(text):
        raise SystemExit("README.md has no <!-- settings-table:start/end --> markers")
    return SECTION.sub(lambda m: m.group(1) + settings_markdown() + "\n" + m.group(3), text)


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    new = updated(text)
    if "--check" in argv:
        if new != text:
            print("README.md's settings table is out of date: run scripts/update_readme.py")
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

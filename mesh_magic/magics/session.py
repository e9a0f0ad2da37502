"""The helper magics: `%meshimg_config`, `%meshimg_models`, `%meshimg_panel`, `%meshimg_history`."""

from __future__ import annotations

import re
import warnings
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class

from ..core import config as _config
from ..core.catalog import image_models, model_query
from ..core.errors import InvalidOptionError, MeshImageError
from ..core.history import load_history
from ..core.kv import parse_value, split_pair, unquote
from ..core.settings import BY_NAME, SETTING_NAMES
from ..render.tables import ConfigTable, ModelTable, spend_table
from .args import shell_split
from .typed_ipython import argument, line_magic, magic_arguments, parser_of

_FLAG_RE = re.compile(r"(?<!\S)--[A-Za-z][\w-]*(?!\S)")
# One KEY=VALUE: VALUE is a quoted string, a JSON object/array (spaces allowed), or one word.
_ASSIGNMENT_RE = re.compile(
    r"""\s*([^\s=]+)=("[^"]*"|'[^']*'|[{\[].*?[}\]](?=\s+[^\s=]+=|\s*$)|\S*)(?=\s|$)"""
)
# ...or the whole pair quoted: 'store_dir=/tmp/a dir'.
_QUOTED_ASSIGNMENT_RE = re.compile(r"""(["'])([^\s=]+=.*?)\1(?=\s|$)""")


def split_assignments(text: str) -> list[str]:
    """`KEY=VALUE` items of a line, where a VALUE may be quoted or JSON with spaces."""
    items, rest = [], text.strip()
    while rest:
        if match := _QUOTED_ASSIGNMENT_RE.match(rest):
            items.append(match.group(2))
        elif match := _ASSIGNMENT_RE.match(rest):
            items.append(match.group(0).strip())
        else:
            items.append(rest.split(None, 1)[0])  # parse_assignment says what is wrong
            break
        rest = rest[match.end() :].strip()
    return items


def _verbatim(key: str) -> bool:
    """Text settings keep their value as typed (a model id or path is never JSON)."""
    setting = BY_NAME.get(key)
    return key == "api_key" or (setting is not None and setting.kind is str and not setting.choices)


def parse_assignment(item: str) -> tuple[str, Any]:
    if "=" not in item:
        # Not repeated: a word typed without api_key= is often the key itself.
        raise InvalidOptionError(
            "%meshimg_config takes KEY=VALUE pairs, e.g. model=google/imagen-4 (a word without '=' "
            "is not repeated here: it may be a key). To set the key: %meshimg_config --login."
        )
    key, raw = split_pair(item, example="model=google/imagen-4")
    if key not in SETTING_NAMES and key != "api_key":
        raise InvalidOptionError(f"Unknown setting {key!r}. Known: api_key, {', '.join(SETTING_NAMES)}.")
    return key, unquote(raw.strip()) if _verbatim(key) else parse_value(raw, what=key)


@magics_class
class SessionMagics(Magics):
    """Configuration, the model list, the panel and the store's history."""

    @magic_arguments()
    @argument("--login", action="store_true", help="Ask for the API key with a hidden prompt.")
    @argument(
        "--remember",
        action="store_true",
        help="Keep the session key (with --login: the one typed) on this machine for later "
        "sessions: the OS keyring, else a file only you can read.",
    )
    @argument("--forget", action="store_true", help="Remove the key remembered on this machine.")
    @argument("--reset", action="store_true", help="Forget every session value (and the session key).")
    @argument("assignments", nargs="*", metavar="KEY=VALUE", help="Session values to set.")
    @line_magic
    def meshimg_config(self, line: str) -> Any:
        """Show the effective config (key masked, with sources), or set session values."""
        # Flags go to argparse; KEY=VALUE pairs are read from the line itself, so a
        # value may hold spaces: params={"seed": 7}, store_dir='/tmp/my store'.
        args = parser_of(self.meshimg_config).parse_args(_FLAG_RE.findall(line))
        assignments = split_assignments(_FLAG_RE.sub(" ", line))
        try:
            if args.reset:
                _config.session().reset()
                print("mesh_magic session config reset to environment and defaults.")
            if args.forget:
                print(_config.forget_key())
            if args.login:
                key = _config.login()
                print(f"Key set for this session: {key.masked}")
            if args.remember:
                print(f"Key remembered {_config.remember_key()} for later sessions.")
            if assignments:
                self._assign(assignments)
        except InvalidOptionError as exc:
            raise UsageError(str(exc)) from None
        if not (args.reset or args.login or args.remember or args.forget or assignments):
            return ConfigTable(_config.resolve())
        return None

    @staticmethod
    def _assign(assignments: list[str]) -> None:
        updates = dict(parse_assignment(item) for item in assignments)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _config.configure(**updates)
        # Re-issued so the warning names the magic, not a line inside IPython.
        for warning in caught:
            warnings.warn_explicit(warning.message, warning.category, "%meshimg_config", 1)

    @magic_arguments()
    @argument(
        "--op",
        metavar="OPERATION",
        help="Only models that can do OPERATION (edit, inpaint, "
        "outpaint, mix, reframe, upscale, remove_background, reference).",
    )
    @argument("--free", action="store_true", help="Only free models.")
    @argument("--max-price", dest="max_price", metavar="USD", help="Only models up to USD per image.")
    @argument("--sort", choices=("name", "price"), default="name", help="Order by id or price.")
    @argument("words", nargs="*", metavar="TEXT", help="Text to find in the id or name.")
    @line_magic
    def meshimg_models(self, line: str) -> Any:
        """Table of image models: id, name, price per image (or free), what each can do.

        %meshimg_models flux --op edit --sort price
        """
        try:
            args = parser_of(self.meshimg_models).parse_intermixed_args(shell_split(line))
            text = " ".join(args.words)
            query = model_query(
                text, operation=args.op, free=args.free, max_price=args.max_price, sort=args.sort
            )
            found = image_models(_config.resolve(), query)
        except ValueError as exc:  # unbalanced quotes, or InvalidOptionError
            raise UsageError(str(exc)) from None
        return ModelTable(found, text)

    @magic_arguments()
    @argument(
        "--all",
        dest="everything",
        action="store_true",
        help="Add up the whole store (every session), not only this one.",
    )
    @line_magic
    def meshimg_cost(self, line: str) -> Any:
        """What this session spent per model (images, USD, images served from the cache)."""
        args = parser_of(self.meshimg_cost).parse_args(shell_split(line))
        try:
            return spend_table(_config.resolve(), everything=args.everything)
        except InvalidOptionError as exc:
            raise UsageError(str(exc)) from None

    @line_magic
    def meshimg_panel(self, line: str) -> Any:
        """Show the widget panel (same as mesh_magic.panel())."""
        from mesh_magic import panel

        return panel()

    @magic_arguments()
    @argument("-m", "--model", help="Only images of models whose id contains MODEL.")
    @argument(
        "--html",
        metavar="PATH",
        help="Write them to PATH as one self-contained HTML page (to share) instead of showing them.",
    )
    @argument(
        "words",
        nargs="*",
        metavar="[N] [TEXT]",
        help="How many images (default 20), then text to find in the prompts.",
    )
    @line_magic
    def meshimg_history(self, line: str) -> Any:
        """The last N stored images (default 20), newest first, as a grid with prompts.

        Reads the store (store_dir / MESHIMG_STORE_DIR), so earlier sessions show too.
        %meshimg_history 10 --model google/imagen-4 cat
        %meshimg_history 50 --html comparison.html
        """
        parser = parser_of(self.meshimg_history)
        try:
            args = parser.parse_intermixed_args(shell_split(line))  # fox's: no quote error
        except ValueError as exc:  # unbalanced quotes
            raise UsageError(f"Could not read the options: {exc}.") from None
        words = list(args.words)
        n = int(words.pop(0)) if words and words[0].isdigit() else None
        try:
            found = load_history(_config.resolve(), n, text=" ".join(words) or None, model=args.model or None)
        except InvalidOptionError as exc:
            raise UsageError(str(exc)) from None
        if not args.html:
            return found
        try:
            written = found.to_html(args.html)
        except (OSError, MeshImageError) as exc:
            raise UsageError(f"Could not write {args.html}: {exc}") from None
        print(
            f"Wrote {len(found)} image{'s' if len(found) != 1 else ''} to {written} "
            "(one self-contained page)."
        )
        return None

"""The IPython front end: %%meshimg / %meshimg and the %meshimg_* helper magics.

A thin layer: parse flags, turn them into call options, hand them to the core,
show the result. Bad input becomes a one-line `UsageError`; API errors render
as a short message with a hint (see `MeshImageError._render_traceback_`).
"""

from __future__ import annotations

import html
import json
import re
import warnings
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.utils.process import arg_split

from . import _config
from ._config import SETTING_NAMES, mask_key
from ._errors import InvalidOptionError, MeshImageError
from ._generate import Plan, new_collector, plan, raise_total_failure, run
from ._prompt import prepare_prompts
from ._request import parse_param
from ._results import ImageResult

_OPTION_TO_SETTING = {
    "model": "model",
    "n": "n",
    "size": "size",
    "quality": "quality",
    "output_format": "output_format",
    "response_format": "response_format",
    "timeout": "timeout",
}


def _options_from_args(args: Any) -> dict[str, Any]:
    """argparse namespace -> call options for the core (None means 'not given')."""
    options: dict[str, Any] = {
        setting: getattr(args, attr)
        for attr, setting in _OPTION_TO_SETTING.items()
        if getattr(args, attr) is not None
    }
    if args.stream:
        options["stream"] = True
    if args.param:
        options["params"] = dict(parse_param(item) for item in args.param)
    if args.save:
        options["save"] = args.save
    if args.fresh:
        options["fresh"] = True
    return options


def _split_line(line: str, parser: Any) -> tuple[list[str], str]:
    """Leading flags (with their values) vs the free-text prompt of `%meshimg`.

    The prompt is kept verbatim, so apostrophes and quotes in prose need no escaping;
    only a prompt that is one quoted string as a whole loses its quotes.
    """
    argv: list[str] = []
    rest = line.strip()
    token_re = re.compile(r"""\s*("[^"]*"|'[^']*'|\S+)""")
    while rest:
        match = token_re.match(rest)
        if not match:
            break
        token = match.group(1)
        if token == "--":
            rest = rest[match.end():]
            break
        if not token.startswith("-") or len(token) == 1 or token[1].isdigit():
            break
        name = token.split("=", 1)[0]
        action = parser._option_string_actions.get(name)
        if action is None and not name.startswith("--") and len(name) > 2:
            action = parser._option_string_actions.get(name[:2])  # -n3 style
            name = name[:2]
        elif action is None and name.startswith("--") and len(name) > 2:
            # argparse takes unique prefixes (--mod for --model): take their value along too.
            found = {a for opt, a in parser._option_string_actions.items() if opt.startswith(name)}
            action = found.pop() if len(found) == 1 else None
        argv.append(token)
        rest = rest[match.end():]
        takes_value = action is not None and action.nargs != 0
        if takes_value and "=" not in token and token == name:
            value = token_re.match(rest)
            if value:
                argv.append(_unquote(value.group(1)))
                rest = rest[value.end():]
    prompt = rest.strip()
    if prompt[:1] in ("'", '"') and prompt[0] not in prompt[1:-1]:
        prompt = _unquote(prompt)  # %meshimg "A paper boat": the quotes are not the prompt's
    return argv, prompt


def _shell_split(line: str) -> list[str]:
    """Words as IPython's `parse_argstring` splits them, minus quotes around a whole word.

    So `--save "my dir"` means `my dir` (parse_argstring would keep the quotes), while
    quotes inside a word survive: `-p meta={"a":1}` still passes JSON. Same rule as `%meshimg`.
    """
    return [_unquote(word) for word in arg_split(line, posix=False)]


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        return token[1:-1]
    return token


@magics_class
class MeshImgMagics(Magics):
    """Magics for MeshAPI image generation."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self._quiet: set[int] = set()

    # -- %%meshimg ---------------------------------------------------------

    @magic_arguments()
    @argument("-m", "--model", help="Model id; several, comma-separated, compare side by side.")
    @argument("-n", "--n", help="Images per prompt and model (1-10).")
    @argument("-s", "--size", help="auto, WIDTHxHEIGHT, square, landscape or portrait.")
    @argument("-q", "--quality", help="auto, low, medium, high, hd or standard.")
    @argument("-f", "--output-format", dest="output_format", help="png, jpeg or webp.")
    @argument("--response-format", dest="response_format", help="url or b64_json.")
    @argument("--stream", action="store_true", help="Stream: show progress and partial images.")
    @argument("-p", "--param", action="append", metavar="KEY=VALUE",
              help="Extra body field (repeatable); VALUE is JSON if it parses, else a string.")
    @argument("-o", "--out", metavar="VAR", help="Also bind the result to VAR.")
    @argument("--save", metavar="DIR", help="Also write the images (+ JSON sidecars) to DIR.")
    @argument("--fresh", action="store_true", help="Bypass the cache for this call.")
    @argument("--no-display", dest="no_display", action="store_true",
              help="Don't display; just return / bind.")
    @argument("--raw", action="store_true", help="No {name} interpolation of the prompt.")
    @argument("--timeout", type=float, metavar="SECONDS", help="Per-request timeout.")
    @argument("prompt", nargs="*", help="(line magic) the prompt; the cell body for %%%%meshimg.")
    @line_cell_magic
    def meshimg(self, line: str, cell: str | None = None) -> ImageResult | None:
        """Generate images from a prompt with MeshAPI and show them inline.

        %%meshimg [options]  — the cell body is the prompt; a line of only --- separates prompts.
        %meshimg [options] PROMPT
        """
        args, text = self._parse_meshimg(line, cell)
        try:
            options = _options_from_args(args)
            prompts = prepare_prompts(text, self.shell.user_ns, raw=args.raw)
            call = plan(prompts, options)
        except InvalidOptionError as exc:
            raise UsageError(str(exc)) from None
        result = self._run(call, display=not args.no_display)
        if args.out:
            self.shell.user_ns[args.out] = result
        return result

    def _parse_meshimg(self, line: str, cell: str | None) -> tuple[Any, str]:
        parser = self.meshimg.parser
        try:
            if cell is None:
                argv, text = _split_line(line, parser)
                args = parser.parse_args(argv)
            else:
                args = parser.parse_args(_shell_split(line))
                text = cell
        except ValueError as exc:  # unbalanced quotes from the shell-style splitter
            raise UsageError(f"Could not read the options: {exc}.") from None
        if cell is not None and args.prompt:
            raise UsageError(
                f"Unexpected {' '.join(args.prompt)!r} after the options: with %%meshimg the "
                "prompt goes in the cell body."
            )
        if args.out and not args.out.isidentifier():
            raise UsageError(f"-o needs a Python variable name (got {args.out!r}).")
        return args, text

    def _run(self, call: Plan, *, display: bool) -> ImageResult:
        from ._progress import ProgressDisplay

        progress = ProgressDisplay(call) if display else None
        result = run(call, new_collector(call), tick=progress.tick if progress else None)
        try:
            raise_total_failure(result)
        except MeshImageError:
            if progress:
                progress.finish(None)
            raise
        # Shown already (in place of the progress box) or not wanted: the displayhook skips it.
        if progress is None or progress.finish(result):
            self._quiet.add(id(result))
        return result

    def display_result(self, result: ImageResult) -> bool:
        """Formatter hook: False (show nothing) for a --no-display result in its own cell."""
        return id(result) not in self._quiet

    def clear_quiet(self, *_: Any) -> None:
        self._quiet.clear()

    # -- %meshimg_config ---------------------------------------------------

    @magic_arguments()
    @argument("--login", action="store_true", help="Ask for the API key with a hidden prompt.")
    @argument("--reset", action="store_true", help="Forget every session value (and the key).")
    @argument("assignments", nargs="*", metavar="KEY=VALUE", help="Session values to set.")
    @line_magic
    def meshimg_config(self, line: str) -> Any:
        """Show the effective config (key masked, with sources), or set session values."""
        # Flags go to argparse; KEY=VALUE pairs are read from the line itself, so a
        # value may hold spaces: params={"seed": 7}, store_dir='/tmp/my store'.
        args = self.meshimg_config.parser.parse_args(_FLAG_RE.findall(line))
        args.assignments = _split_assignments(_FLAG_RE.sub(" ", line))
        session = _config.session()
        if args.reset:
            session.reset()
            print("mesh_magic session config reset to environment and defaults.")
        if args.login:
            from ._api import login

            try:
                login()
            except InvalidOptionError as exc:
                raise UsageError(str(exc)) from None
            print(f"Key set for this session: {session.api_key.masked if session.api_key else ''}")
        if args.assignments:
            updates = dict(_parse_assignment(item) for item in args.assignments)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    _config.configure(**updates)
            except InvalidOptionError as exc:
                raise UsageError(str(exc)) from None
            # Re-issued so the warning names the magic, not a line inside IPython.
            for warning in caught:
                warnings.warn_explicit(
                    warning.message, warning.category, "%meshimg_config", 1
                )
        if not (args.reset or args.login or args.assignments):
            return ConfigTable(_config.resolve())
        return None

    # -- %meshimg_models ---------------------------------------------------

    @line_magic
    def meshimg_models(self, line: str) -> Any:
        """Table of image-capable models (id, price per image when known); filter by TEXT."""
        from ._api import models

        try:
            found = models(line.strip() or None)
        except InvalidOptionError as exc:
            raise UsageError(str(exc)) from None
        return ModelTable(found, line.strip())

    # -- %meshimg_panel / %meshimg_history ---------------------------------

    @line_magic
    def meshimg_panel(self, line: str) -> Any:
        """Show the widget panel (same as mesh_magic.panel())."""
        from ._panel import panel

        return panel()

    @magic_arguments()
    @argument("-m", "--model", help="Only images of models whose id contains MODEL.")
    @argument("words", nargs="*", metavar="[N] [TEXT]",
              help="How many images (default 20), then text to find in the prompts.")
    @line_magic
    def meshimg_history(self, line: str) -> Any:
        """The last N stored images (default 20), newest first, as a grid with prompts.

        Reads the store (store_dir / MESHIMG_STORE_DIR), so earlier sessions show too.
        %meshimg_history 10 --model google/imagen-4 cat
        """
        from ._api import history

        parser = self.meshimg_history.parser
        try:
            args = parser.parse_intermixed_args(_shell_split(line))  # fox's: no quote error
        except ValueError as exc:  # unbalanced quotes
            raise UsageError(f"Could not read the options: {exc}.") from None
        words = list(args.words)
        n = None
        if words and words[0].isdigit():
            n = int(words.pop(0))
        try:
            return history(n, text=" ".join(words) or None, model=args.model or None)
        except InvalidOptionError as exc:
            raise UsageError(str(exc)) from None


_FLAG_RE = re.compile(r"(?<!\S)--[A-Za-z][\w-]*(?!\S)")
# One KEY=VALUE: VALUE is a quoted string, a JSON object/array (spaces allowed), or one word.
_ASSIGNMENT_RE = re.compile(
    r"""\s*([^\s=]+)=("[^"]*"|'[^']*'|[{\[].*?[}\]](?=\s+[^\s=]+=|\s*$)|\S*)(?=\s|$)"""
)


# ...or the whole pair quoted: 'store_dir=/tmp/a dir'.
_QUOTED_ASSIGNMENT_RE = re.compile(r"""(["'])([^\s=]+=.*?)\1(?=\s|$)""")


def _split_assignments(text: str) -> list[str]:
    items, rest = [], text.strip()
    while rest:
        if match := _QUOTED_ASSIGNMENT_RE.match(rest):
            items.append(match.group(2))
        elif match := _ASSIGNMENT_RE.match(rest):
            items.append(match.group(0).strip())
        else:
            items.append(rest.split(None, 1)[0])  # _parse_assignment says what is wrong
            break
        rest = rest[match.end():].strip()
    return items


def _parse_assignment(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"Expected KEY=VALUE (got {item!r}), e.g. model=google/imagen-4.")
    if key not in SETTING_NAMES and key != "api_key":
        raise UsageError(f"Unknown setting {key!r}. Known: api_key, {', '.join(SETTING_NAMES)}.")
    if key in ("api_key", "model", "base_url", "store_dir", "size"):
        return key, _unquote(raw.strip())
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, _unquote(raw.strip())


def _html_table(head: list[str], rows: list[list[str]], right: int | None = None) -> str:
    """Cells left-aligned (JupyterLab, Notebook 7 and nbconvert right-align them by default)."""
    def tr(tag: str, cells: list[str]) -> str:
        return "<tr>" + "".join(
            f"<{tag} style='text-align:{'right' if col == right else 'left'}'>{text}</{tag}>"
            for col, text in enumerate(cells)) + "</tr>"

    return "<table>" + tr("th", head) + "".join(tr("td", row) for row in rows) + "</table>"


class ConfigTable:
    """The effective configuration, masked key included, as HTML and text."""

    def __init__(self, settings: _config.Settings) -> None:
        self.rows: list[tuple[str, str, str]] = [
            ("api_key", mask_key(settings.api_key.reveal() if settings.api_key else None),
             settings.sources.get("api_key", ""))
        ]
        for name in SETTING_NAMES:
            value = getattr(settings, name)
            self.rows.append((name, "" if value is None else repr(value) if isinstance(value, dict)
                              else str(value), settings.sources.get(name, "")))

    def __repr__(self) -> str:
        width = max(len(r[0]) for r in self.rows)
        return "\n".join(f"{k.ljust(width)}  {v}  ({s})" for k, v, s in self.rows)

    def _repr_html_(self) -> str:
        rows = [[f"<code>{html.escape(k)}</code>", html.escape(v),
                 f"<span style='opacity:.7'>{html.escape(s)}</span>"] for k, v, s in self.rows]
        return _html_table(["setting", "value", "from"], rows)


class ModelTable:
    """The image model list as HTML and text."""

    def __init__(self, models: list[dict[str, Any]], text: str = "") -> None:
        from ._api import price_per_image

        self.text = text
        self.rows = [(str(m.get("id")), str(m.get("name") or ""), price_per_image(m)) for m in models]

    @staticmethod
    def _price(value: float | None) -> str:
        return "—" if value is None else f"${value:.3f}"

    def __repr__(self) -> str:
        if not self.rows:
            return f"No image models match {self.text!r}." if self.text else "No image models."
        width = max(len(r[0]) for r in self.rows)
        lines = [f"{'model'.ljust(width)}  price/image"]
        lines += [f"{i.ljust(width)}  {self._price(p)}" for i, _, p in self.rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<i>{html.escape(repr(self))}</i>"
        rows = [[f"<code>{html.escape(i)}</code>", html.escape(n), self._price(p)]
                for i, n, p in self.rows]
        return _html_table(["model", "name", "price / image"], rows, right=2)


def register(shell: Any) -> MeshImgMagics:
    """Install the config, magics and display hook into `shell` (called by %load_ext)."""
    config = _config.MeshImg(parent=shell)
    _config.install_session(config)
    # %reload_ext: the new config (which took over the old one's values) replaces it.
    shell.configurables[:] = [c for c in shell.configurables if not isinstance(c, _config.MeshImg)]
    shell.configurables.append(config)
    magics = MeshImgMagics(shell)
    shell.register_magics(magics)
    formatter = shell.display_formatter.ipython_display_formatter

    def show(result: ImageResult) -> bool | None:
        if not magics.display_result(result):
            return True  # handled: nothing to show
        from IPython.display import display

        data, metadata = result._repr_mimebundle_()
        display(data, raw=True, metadata=metadata)
        return True

    formatter.for_type(ImageResult, show)
    shell.events.register("post_run_cell", magics.clear_quiet)
    return magics

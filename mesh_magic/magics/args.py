"""The options of `%%meshimg` / `%meshimg`: flags from the settings table, plus the call's own.

Every setting with `flags` in the table becomes an option with its help text;
`CALL_FLAGS` adds what is not a setting (`-o`, `--save`, ...). Parsing turns the
namespace into the core's call options; the line magic's prompt is split off
verbatim so prose needs no quoting.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..core.errors import InvalidOptionError
from ..core.kv import parse_pair, unquote
from ..core.settings import Setting, flagged
from .typed_ipython import arg_split, argument, magic_arguments

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Flag:
    """An option of the magic that is not a setting."""

    names: tuple[str, ...]
    dest: str
    help: str
    kwargs: dict[str, Any] = field(default_factory=dict)


CALL_FLAGS: tuple[Flag, ...] = (
    Flag(("-o", "--out"), "out", "Also bind the result to VAR.", {"metavar": "VAR"}),
    Flag(("--save",), "save", "Also write the images (+ JSON sidecars) to DIR.", {"metavar": "DIR"}),
    Flag(("--fresh",), "fresh", "Bypass the cache for this call.", {"action": "store_true"}),
    Flag(("--no-display",), "no_display", "Don't display; just return / bind.", {"action": "store_true"}),
    Flag(("--raw",), "raw", "No {name} interpolation of the prompt.", {"action": "store_true"}),
    Flag(
        ("-i", "--image"),
        "image",
        "Edit this image (repeatable: the first is edited, the rest are references). SRC is a "
        "variable (img, result, result[1]), a file, an https:// URL or a data: URI.",
        {"action": "append", "metavar": "SRC"},
    ),
    Flag(
        ("--op",),
        "operation",
        "edit (default with --image), inpaint, outpaint, mix, reframe, upscale or remove_background.",
        {"metavar": "OPERATION"},
    ),
    Flag(("--mask",), "mask", "The mask: fully transparent pixels mark what to change.", {"metavar": "SRC"}),
    Flag(
        ("--region",),
        "region",
        "A rectangular mask instead of --mask: pixels, or fractions 0-1.",
        {"metavar": "X,Y,W,H"},
    ),
    Flag(
        ("--ref",),
        "references",
        "A reference image for a generation (repeatable).",
        {"action": "append", "metavar": "SRC"},
    ),
    Flag(
        ("--seed",),
        "seed",
        "The seed body field (same as -p seed=N), recorded with the image.",
        {"metavar": "N"},
    ),
)
# Call options the core takes (the rest shape how the magic shows and binds).
_CORE_CALL_OPTIONS = ("save", "fresh", "image", "operation", "mask", "region", "references", "seed")


def _setting_argument(s: Setting) -> Callable[[F], F]:
    text = s.help.replace("`", "")
    if s.kind is bool:
        return argument(*s.flags, dest=s.name, action="store_true", help=text)
    if s.kind is dict:
        return argument(
            *s.flags,
            dest=s.name,
            action="append",
            metavar=s.metavar,
            help=text + " (repeatable; VALUE is JSON if it parses, else a string)",
        )
    return argument(*s.flags, dest=s.name, metavar=s.metavar, help=text)


def meshimg_arguments(func: F) -> F:
    """Decorate the magic with every setting flag, `CALL_FLAGS` and the line prompt."""
    decorators: list[Callable[[F], F]] = [_setting_argument(s) for s in flagged()]
    decorators += [argument(*f.names, dest=f.dest, help=f.help, **f.kwargs) for f in CALL_FLAGS]
    decorators.append(
        argument("prompt", nargs="*", help="(line magic) the prompt; the cell body for %%%%meshimg.")
    )
    for decorate in reversed(decorators):
        func = decorate(func)
    return magic_arguments()(func)


def options_from_args(args: Any) -> dict[str, Any]:
    """argparse namespace -> call options for the core (absent means 'not given')."""
    options: dict[str, Any] = {}
    for s in flagged():
        value = getattr(args, s.name)
        if s.kind is bool:
            if value:
                options[s.name] = True
        elif s.kind is dict:
            if value:
                options[s.name] = dict(parse_pair(item, example="-p seed=42", label="-p") for item in value)
        elif value is not None:
            options[s.name] = value
    for name in _CORE_CALL_OPTIONS:
        if getattr(args, name):
            options[name] = getattr(args, name)
    return options


# A source named by a variable: `img`, `result`, `result[1]`, `result[-1]`.
_VARIABLE = re.compile(r"^([A-Za-z_]\w*)(?:\[(-?\d+)\])?$")
_SOURCE_OPTIONS = ("image", "mask", "references")


def sources_from_namespace(options: dict[str, Any], namespace: dict[str, Any]) -> dict[str, Any]:
    """Image sources that name a variable become its value (`result[1]`: that item);
    anything else stays a path, URL or data: URI. Labels say where each came from."""
    labels: dict[str, list[str | None]] = {}
    for name in _SOURCE_OPTIONS:
        if name not in options:
            continue
        values = options[name] if isinstance(options[name], list) else [options[name]]
        resolved, names = [], []
        for text in values:
            value, label = _variable(text, namespace)
            resolved.append(value)
            names.append(label)
        options[name] = resolved if isinstance(options[name], list) else resolved[0]
        labels[name] = names
    if labels:
        options["source_labels"] = labels
    return options


def _variable(text: str, namespace: dict[str, Any]) -> tuple[Any, str | None]:
    match = _VARIABLE.match(text.strip())
    if not match or match.group(1) not in namespace:
        return text, None
    value = namespace[match.group(1)]
    if match.group(2) is None:
        return value, match.group(1)
    try:
        return value[int(match.group(2))], text.strip()
    except (IndexError, TypeError, KeyError):
        raise InvalidOptionError(
            f"{text.strip()} does not name an image: {match.group(1)} has no item {match.group(2)}."
        ) from None


_TOKEN = re.compile(r"""\s*("[^"]*"|'[^']*'|\S+)""")


def _action_for(parser: Any, token: str) -> tuple[Any, str]:
    """The argparse action a leading flag token names (with `-n3` and `--mod` forms)."""
    name = token.split("=", 1)[0]
    actions = parser._option_string_actions
    action = actions.get(name)
    if action is None and not name.startswith("--") and len(name) > 2:
        return actions.get(name[:2]), name[:2]  # -n3 style
    if action is None and name.startswith("--") and len(name) > 2:
        # argparse takes unique prefixes (--mod for --model): take their value along too.
        found = {a for opt, a in actions.items() if opt.startswith(name)}
        return (found.pop() if len(found) == 1 else None), name
    return action, name


def split_line(line: str, parser: Any) -> tuple[list[str], str]:
    """Leading flags (with their values) vs the free-text prompt of `%meshimg`.

    The prompt is kept verbatim, so apostrophes and quotes in prose need no escaping;
    only a prompt that is one quoted string as a whole loses its quotes.
    """
    argv: list[str] = []
    rest = line.strip()
    while rest:
        match = _TOKEN.match(rest)
        if not match:
            break
        token = match.group(1)
        if token == "--":
            rest = rest[match.end() :]
            break
        if not token.startswith("-") or len(token) == 1 or token[1].isdigit():
            break
        action, name = _action_for(parser, token)
        argv.append(token)
        rest = rest[match.end() :]
        takes_value = action is not None and action.nargs != 0
        if takes_value and "=" not in token and token == name:
            value = _TOKEN.match(rest)
            if value:
                argv.append(unquote(value.group(1)))
                rest = rest[value.end() :]
    prompt = rest.strip()
    if prompt[:1] in ("'", '"') and prompt[0] not in prompt[1:-1]:
        prompt = unquote(prompt)  # %meshimg "A paper boat": the quotes are not the prompt's
    return argv, prompt


def shell_split(line: str) -> list[str]:
    """Words as IPython's `parse_argstring` splits them, minus quotes around a whole word.

    So `--save "my dir"` means `my dir` (parse_argstring would keep the quotes), while
    quotes inside a word survive: `-p meta={"a":1}` still passes JSON. Same rule as `%meshimg`.
    """
    return [unquote(word) for word in arg_split(line)]

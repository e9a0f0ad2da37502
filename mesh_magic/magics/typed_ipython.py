"""Typed doors into the parts of IPython whose annotations mypy cannot use.

IPython's `magic_arguments` decorators are untyped, and its `line_magic` marker
is typed as returning a union (decorator or decorated function), which makes
every magic method ill-typed under `mypy --strict`; these wrappers state what
they do once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from IPython.core import magic as _magic, magic_arguments as _magic_arguments
from IPython.core.error import UsageError
from IPython.utils import process as _process

from ..core.errors import MeshImageError
from ..core.keys import detached, hide_keys

F = TypeVar("F", bound=Callable[..., Any])


def argument(*names: str, **kwargs: Any) -> Callable[[F], F]:
    """`IPython.core.magic_arguments.argument`: add one argparse argument to a magic."""
    return cast(Callable[[F], F], _magic_arguments.argument(*names, **kwargs))


def magic_arguments() -> Callable[[F], F]:
    """`IPython.core.magic_arguments.magic_arguments`: build the magic's parser."""
    return cast(Callable[[F], F], _magic_arguments.magic_arguments())


def _masking(func: F) -> F:
    """Errors of a magic repeat no key: a key typed in the wrong place is masked in the message.

    One door for every magic, so argparse's "unrecognized arguments: rsk_..." and a
    check's "(got 'rsk_...')" are covered alike.
    """

    @functools.wraps(func)
    def magic(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UsageError as exc:
            error: BaseException = UsageError(hide_keys(str(exc)))
        except MeshImageError as exc:
            error = exc.with_context(message=hide_keys(exc.message)) if exc.message else exc
        del args, kwargs  # the line and the cell: they may hold the key
        raise detached(error)

    return cast(F, magic)


def line_magic(func: F) -> F:
    """`IPython.core.magic.line_magic` on a Magics method (errors masked: `_masking`)."""
    return cast(F, _magic.line_magic(_masking(func)))


def line_cell_magic(func: F) -> F:
    """`IPython.core.magic.line_cell_magic` on a Magics method (errors masked: `_masking`)."""
    return cast(F, _magic.line_cell_magic(_masking(func)))


def arg_split(line: str) -> list[str]:
    """IPython's shell-style split, keeping quotes (as `parse_argstring` does)."""
    split: list[str] = getattr(_process, "arg_split")(line, posix=False)  # noqa: B009 - not re-exported
    return split


def parser_of(magic: Any) -> Any:
    """The argparse parser `magic_arguments` attached to a magic method."""
    return magic.parser

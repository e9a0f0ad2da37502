"""`%%meshimg` / `%meshimg`: parse the options, hand them to the core, show the result.

Bad input becomes a one-line `UsageError`; API errors render as a short message
with a hint (see `MeshImageError._render_traceback_`).
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class

from ..core.errors import InvalidOptionError, MeshImageError
from ..core.generate import Plan, new_progress, raise_total_failure, run, warn_unsaved
from ..core.pricing import prepare
from ..core.prompt import prepare_prompts
from ..core.results import ImageResult
from .args import meshimg_arguments, options_from_args, shell_split, sources_from_namespace, split_line
from .typed_ipython import line_cell_magic, parser_of


@magics_class
class GenerateMagics(Magics):
    """The generation magic, and the display hook that keeps `--no-display` results quiet."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self._quiet: set[int] = set()

    @property
    def _namespace(self) -> dict[str, Any]:
        assert self.shell is not None, "magics are registered with a shell"
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    @meshimg_arguments
    @line_cell_magic
    def meshimg(self, line: str, cell: str | None = None) -> ImageResult | None:
        """Generate images from a prompt with MeshAPI and show them inline.

        %%meshimg [options]  — the cell body is the prompt; a line of only --- separates prompts.
        %meshimg [options] PROMPT
        """
        args, text = self._parse(line, cell)
        try:
            options = sources_from_namespace(options_from_args(args), self._namespace)
            prompts = prepare_prompts(text, self._namespace, raw=args.raw)
            call = prepare(prompts, options)
        except InvalidOptionError as exc:
            raise UsageError(str(exc)) from None
        result = self._run(call, display=not args.no_display)
        if args.out:
            self._namespace[args.out] = result
        warn_unsaved(result)  # shown and bound first: a failed --save loses nothing
        return result

    def _parse(self, line: str, cell: str | None) -> tuple[Any, str]:
        parser = parser_of(self.meshimg)
        try:
            if cell is None:
                argv, text = split_line(line, parser)
                args = parser.parse_args(argv)
            else:
                args = parser.parse_args(shell_split(line))
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
        from ..render.progress import ProgressDisplay

        progress = ProgressDisplay(call) if display else None
        result = run(call, new_progress(call), tick=progress.tick if progress else None)
        try:
            raise_total_failure(result)
        except MeshImageError:
            if progress:
                progress.finish(None)
            raise
        # Shown already (in place of the progress box) or not wanted: the displayhook skips it.
        if progress is None or progress.finish(result):
            self._quiet.add(id(result))
        elif result.save_error:
            from IPython.display import display as show

            show(result)  # now, before the save's warning, rather than after it by the displayhook
            self._quiet.add(id(result))
        return result

    def display_result(self, result: ImageResult) -> bool:
        """Formatter hook: False (show nothing) for a --no-display result in its own cell."""
        return id(result) not in self._quiet

    def clear_quiet(self, *_: Any) -> None:
        self._quiet.clear()

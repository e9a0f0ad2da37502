"""The pure magic layer: argument splitting, help text, UsageError wording, %load_ext."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from IPython.core.error import UsageError

from mesh_magic.core.errors import InvalidOptionError
from mesh_magic.magics import GenerateMagics as MeshImgMagics
from mesh_magic.magics.args import (
    options_from_args as _options_from_args,
    shell_split as _shell_split,
    split_line as _split_line,
)
from mesh_magic.magics.session import parse_assignment as _parse_assignment

PARSER = MeshImgMagics.meshimg.parser
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Every option of SPEC section 2, as (short, long).
SPEC_OPTIONS = [
    ("-m", "--model"),
    ("-n", "--n"),
    ("-s", "--size"),
    ("-q", "--quality"),
    ("-f", "--output-format"),
    (None, "--response-format"),
    (None, "--stream"),
    ("-p", "--param"),
    ("-o", "--out"),
    (None, "--save"),
    (None, "--fresh"),
    (None, "--no-display"),
    (None, "--raw"),
    (None, "--timeout"),
]


@pytest.mark.parametrize(
    ("line", "argv", "prompt"),
    [
        ("-n 3 -s square A fox", ["-n", "3", "-s", "square"], "A fox"),
        ("-n3 fox", ["-n3"], "fox"),
        ("--model=google/imagen-4 a fox", ["--model=google/imagen-4"], "a fox"),
        ("-m 'a/b,c/d' fox", ["-m", "a/b,c/d"], "fox"),
        ('--save "my images" fox', ["--save", "my images"], "fox"),
        ("--stream --raw a {x} fox", ["--stream", "--raw"], "a {x} fox"),
        ("-- -n is in the prompt", [], "-n is in the prompt"),
        ("fox -n 3", [], "fox -n 3"),
        ("-5 degrees outside", [], "-5 degrees outside"),
        ('A fox\'s den at "dusk"', [], 'A fox\'s den at "dusk"'),
        ("-p 'meta={\"a\": 1}' -p seed=4 fox", ["-p", 'meta={"a": 1}', "-p", "seed=4"], "fox"),
        ("-o out --no-display   spaced   prompt  ", ["-o", "out", "--no-display"], "spaced   prompt"),
        ("--bogus fox", ["--bogus"], "fox"),
        ("- dash", [], "- dash"),
        ("", [], ""),
    ],
)
def test_split_line(line: str, argv: list[str], prompt: str) -> None:
    assert _split_line(line, PARSER) == (argv, prompt)


def test_line_prompt_in_quotes_is_unquoted() -> None:
    parser = MeshImgMagics.meshimg.parser
    assert _split_line('-s square "A paper boat"', parser) == (["-s", "square"], "A paper boat")
    # Only a prompt that is one quoted string loses its quotes.
    assert _split_line("'A fox's den'", parser) == ([], "'A fox's den'")
    assert _split_line('"Hi" she said', parser) == ([], '"Hi" she said')


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('--save "my dir" -n 2', ["--save", "my dir", "-n", "2"]),
        ("-p 'meta={\"a\": 1}'", ["-p", 'meta={"a": 1}']),
        ('-p meta={"a":1}', ["-p", 'meta={"a":1}']),
        ('-p label="007"', ["-p", 'label="007"']),
        ("", []),
    ],
)
def test_shell_split_for_cell_magic_options(line: str, words: list[str]) -> None:
    assert _shell_split(line) == words


def test_shell_split_unbalanced_quote() -> None:
    with pytest.raises(ValueError):
        _shell_split("--save 'oops")


def test_options_from_args() -> None:
    args = PARSER.parse_args(
        [
            "-m",
            "a/b",
            "-n",
            "2",
            "-p",
            "seed=3",
            "-p",
            "style=vivid",
            "--stream",
            "--fresh",
            "--save",
            "out",
            "--timeout",
            "9",
            "-f",
            "webp",
            "--response-format",
            "url",
            "-q",
            "low",
            "-s",
            "square",
        ]
    )
    options = _options_from_args(args)
    assert options == {
        "model": "a/b",
        "n": "2",
        "size": "square",
        "quality": "low",
        "output_format": "webp",
        "response_format": "url",
        "timeout": "9",
        "stream": True,
        "params": {"seed": 3, "style": "vivid"},
        "save": "out",
        "fresh": True,
    }
    bare = _options_from_args(PARSER.parse_args([]))
    assert bare == {}


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("model=google/imagen-4", ("model", "google/imagen-4")),
        ('model="google/imagen-4"', ("model", "google/imagen-4")),
        ("n=2", ("n", 2)),
        ("stream=true", ("stream", True)),
        ('params={"seed": 1}', ("params", {"seed": 1})),
        ("cache=on", ("cache", "on")),
        ("size=1024x1024", ("size", "1024x1024")),
        ("api_key=rsk_abc", ("api_key", "rsk_abc")),
        ("base_url=offline", ("base_url", "offline")),
    ],
)
def test_parse_assignment(item: str, expected: tuple[str, Any]) -> None:
    assert _parse_assignment(item) == expected


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ("model", "takes KEY=VALUE pairs"),
        ("=x", "Expected KEY=VALUE"),
        ("colour=red", "Unknown setting 'colour'"),
    ],
)
def test_parse_assignment_errors(item: str, match: str) -> None:
    with pytest.raises(InvalidOptionError, match=match):
        _parse_assignment(item)


def test_help_lists_every_spec_option(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_cell("%%meshimg?")
    text = ANSI.sub("", capsys.readouterr().out)
    for short, long in SPEC_OPTIONS:
        assert long in text, long
        if short:
            assert re.search(
                rf"{re.escape(short)} \S+, {re.escape(long)}|{re.escape(short)}, "
                rf"{re.escape(long)}",
                text,
            ), short
    assert "KEY=VALUE" in text and "SECONDS" in text
    assert "the cell body for %%meshimg" in text
    assert "---" in text  # the separator is documented


def test_each_option_has_help(shell: Any) -> None:
    helped = {opt for action in PARSER._actions if action.help for opt in action.option_strings}
    for short, long in SPEC_OPTIONS:
        assert long in helped and (short is None or short in helped)


def test_helper_magics_have_docs(shell: Any) -> None:
    magics = shell.magics_manager.magics
    for name in ("meshimg", "meshimg_config", "meshimg_models", "meshimg_panel", "meshimg_history"):
        assert name in magics["line"], name
        assert magics["line"][name].__doc__
    assert "meshimg" in magics["cell"]
    assert "--login" in magics["line"]["meshimg_config"].__doc__
    assert "--reset" in magics["line"]["meshimg_config"].__doc__


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("%%meshimg -n 0\nfox", "n must be from 1 to 10 (got '0')."),
        (
            "%%meshimg\n\n",
            "The prompt is empty: write it in the cell body (or after the options on the line).",
        ),
        ("%%meshimg -p seed\nfox", "-p expects KEY=VALUE (got 'seed'), e.g. -p seed=42."),
        ("%%meshimg -o my-var\nfox", "-o needs a Python variable name (got 'my-var')."),
        (
            "%%meshimg extra\nfox",
            "Unexpected 'extra' after the options: with %%meshimg the prompt goes in the cell body.",
        ),
    ],
)
def test_usage_error_wording(shell: Any, cell: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        shell.run_cell(cell)
    assert str(info.value) == message


def test_size_usage_error_suggests_the_aliases(shell: Any) -> None:
    with pytest.raises(UsageError) as info:
        shell.run_cell("%%meshimg -s big\nfox")
    for word in ("auto", "WIDTHxHEIGHT", "square", "landscape", "portrait"):
        assert word in str(info.value)


def test_load_ext_is_light() -> None:
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'mesh_magic')\n"
        "heavy = [m for m in ('PIL', 'ipywidgets', 'httpx_sse', 'uvicorn', 'starlette', 'zlib_ng')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
        "assert 'meshimg' in ip.magics_manager.magics['cell']\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout

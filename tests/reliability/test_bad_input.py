"""Bad input: property-based tests of the magic line parser and of prompt interpolation.

No input may crash with anything but a clear `UsageError` (or succeed), and a
`UsageError` means nothing was sent: the server's request log says so. The
number of examples hypothesis actually ran goes into the suite's table.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from IPython.core.error import UsageError

from mesh_magic.core import config as _config
from mesh_magic.core.errors import APITimeoutError, MeshImageError
from mesh_magic.core.prompt import interpolate, prepare_prompts, split_prompts
from mesh_magic.magics.args import split_line as _split_line
from tests.reliability.report import REPORT

pytestmark = pytest.mark.usefixtures("cheap_images")

EXAMPLES = 150
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

FLAGS = [
    "-m",
    "--model",
    "-n",
    "--n",
    "-s",
    "--size",
    "-q",
    "--quality",
    "-f",
    "--output-format",
    "--response-format",
    "--stream",
    "-p",
    "--param",
    "-o",
    "--out",
    "--fresh",
    "--no-display",
    "--raw",
    "--timeout",
    "--",
    "-",
    "-x",
    "--bogus",
    "-h",
    "--help",
    "--mod",
    "-n3",
    "--n=2",
    "-m=",
    "--size=square",
    "-pseed=1",
    "--quality=",
    "-q=low",
    "--timeout=-1",
]
VALUES = [
    "1",
    "2",
    "0",
    "11",
    "-1",
    "3.5",
    "1e3",
    "abc",
    "",
    "auto",
    "square",
    "landscape",
    "portrait",
    "64x64",
    "80X64",
    "16x16",
    "1x1",
    "99999x2",
    "64×64",
    "low",
    "hd",
    "ultra",
    "png",
    "jpeg",
    "gif",
    "url",
    "b64_json",
    "seed=7",
    'background="transparent"',
    "n=3",
    "prompt=x",
    "=",
    "seed=NaN",
    "seed=1e999",
    "x=[1,2]",
    "x={",
    "openai/dall-e-3",
    "google/imagen-4",
    "nope/model",
    "openai/dall-e-3,google/imagen-4",
    ",",
    "'quoted value'",
    '"double quoted"',
    '"unterminated',
    "'",
    "0.5",
    "nan",
    "inf",
    "result",
    "1bad",
    "{name}",
    "{{",
    "}}",
    "{name:>99999999}",
    "𝔘𝔫𝔦",
    "مرحبا",
    "🦊",
    "\\",
    "\x00",
    "---",
    "١٢",
]
WORDS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
TOKENS = st.one_of(st.sampled_from(FLAGS), st.sampled_from(VALUES), WORDS)
LINES = st.one_of(
    st.lists(TOKENS, max_size=8).map(" ".join),
    st.text(max_size=60),
)


@pytest.fixture
def magic_shell(server: Any, shell: Any) -> Iterator[Any]:
    # The shell fixture installed a fresh session; point it at the server again.
    _config.session().set_api_key(server.api_key)
    _config.configure(base_url=server.base_url, max_retries=0, size="64x64", timeout=10)
    shell.user_ns.update(name="Ada", items=[1, 2, 3])
    yield shell


def _run_line(shell: Any, server: Any, line: str) -> str:
    before = len(server.requests)
    try:
        shell.run_line_magic("meshimg", line)
    except UsageError as exc:
        assert len(server.requests) == before, f"{line!r}: a UsageError after sending a request"
        text = str(exc)
        assert text.strip() and "Traceback" not in text and len(text) < 2000, text
        return "usage"
    except MeshImageError as exc:
        # The client accepted the line and the server (or the clock) said no, clearly.
        assert len(server.requests) > before, f"{line!r}: {exc!r} without a request"
        assert exc.status is not None or isinstance(exc, APITimeoutError), repr(exc)
        assert str(exc).strip() and exc.hint
        return "server"
    assert len(server.requests) > before, f"{line!r}: succeeded without a request"
    return "ok"


@PROPERTY
@given(line=LINES)
@example(line="-n 2 -s square")  # no prompt
@example(line="-m")
@example(line="-p seed=NaN a fox")
@example(line="-p seed=1e999 a fox")
@example(line="-p " + "[" * 5000 + " a fox")
@example(line="-p x=" + "[" * 5000 + " a fox")
@example(line="-m 'unterminated a fox")
@example(line='-m "open ai/x" a fox')
@example(line="--timeout nan a fox")
@example(line="-o 1bad a fox")
@example(line="a fox \ud800 with a lone surrogate")
@example(line="{name:>99999999} wide")
def test_magic_line_never_crashes(magic_shell: Any, server: Any, line: str) -> None:
    REPORT.examples("magic line (%meshimg)", 1)
    REPORT.tally("magic line (%meshimg)", _run_line(magic_shell, server, line))


@PROPERTY
@given(line=st.text(max_size=80), value_flag=st.sampled_from(["-m", "-s", "-p", "-o", "--timeout"]))
def test_split_line_keeps_the_prompt_verbatim(shell: Any, line: str, value_flag: str) -> None:
    REPORT.examples("_split_line", 1)
    parser = shell.magics_manager.magics["line"]["meshimg"].__self__.meshimg.parser
    argv, rest = _split_line(f"{value_flag} v {line}", parser)
    assert argv[:2] == [value_flag, "v"]
    assert rest == "" or rest in line, "the prompt is a verbatim slice of what was typed"


class Hostile:
    """Every hook a format field can reach raises."""

    def __format__(self, spec: str) -> str:
        raise RuntimeError("format")

    def __getattr__(self, name: str) -> Any:
        raise KeyError(name)

    def __getitem__(self, key: Any) -> Any:
        raise ZeroDivisionError

    def __repr__(self) -> str:
        raise ValueError("repr")

    __str__ = __repr__


NAMESPACE = {
    "name": "Ada",
    "n": 3,
    "price": 2.5,
    "items": [1, 2, 3],
    "d": {"k": "v"},
    "hostile": Hostile(),
    "none": None,
    "nested": {"a": [{"b": "deep"}]},
}
FIELD_TEXT = st.one_of(
    st.text(max_size=80),
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "{",
                    "}",
                    "{{",
                    "}}",
                    "{name}",
                    "{n:>5}",
                    "{price:.2f}",
                    "{items[1]}",
                    "{d[k]}",
                    "{hostile}",
                    "{hostile.x}",
                    "{hostile[0]}",
                    "{hostile!r}",
                    "{name!x}",
                    "{name:%%}",
                    "{nested[a][0][b]}",
                    "{missing}",
                    "{name.upper}",
                    "{n:>99999999999}",
                    "{items[99]}",
                    "{0}",
                    "{}",
                    "\n---\n",
                    "---",
                    "🦊",
                ]
            ),
            st.text(max_size=10),
        ),
        max_size=12,
    ).map("".join),
)


@PROPERTY
@given(text=FIELD_TEXT, raw=st.booleans())
@example(text="{n:>900000000}", raw=False)
@example(text="x" * 20000 + "{name}" + "🦊" * 100, raw=False)
def test_interpolation_never_raises(text: str, raw: bool) -> None:
    REPORT.examples("prompt interpolation", 1)
    started = time.perf_counter()
    out = interpolate(text, NAMESPACE)
    prompts = prepare_prompts(text, NAMESPACE, raw=raw)
    assert isinstance(out, str) and all(isinstance(p, str) for p in prompts)
    assert len(out) <= len(text) * 4 + 1000, "a fill-in cannot blow the prompt up"
    assert all(p == p.strip() for p in prompts)
    if raw:
        assert prompts == split_prompts(text)
    if "{" not in text and "}" not in text:
        assert out == text
    assert time.perf_counter() - started < 1.0


@PROPERTY
@given(word=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True))
def test_unknown_names_and_doubled_braces_stay_as_typed(word: str) -> None:
    REPORT.examples("prompt interpolation (literals)", 1)
    if word in NAMESPACE:
        return
    assert interpolate(f"a {{{word}}} b", NAMESPACE) == f"a {{{word}}} b"
    assert interpolate(f"{{{{{word}}}}}", NAMESPACE) == f"{{{word}}}"


LONG_AND_ODD = {
    "20k chars": "A city at dusk, " * 1250,
    "emoji": "🦊🌲❄️ a fox in snow 👩🏽‍🚀 with ZWJ sequences",
    "rtl": "قطة على سطح القمر — חתול על הירח",
    "combining": "Z̷̢a̵l̶g̸o̷ text and ﬁ ligatures",
    "nul": "before\x00after",
    "controls": "bell\x07 tab\t vertical\x0b",
    "cjk": "富士山と桜、浮世絵スタイル",
}


@pytest.mark.parametrize("label", list(LONG_AND_ODD))
def test_unicode_and_long_prompts(magic_shell: Any, server: Any, label: str) -> None:
    prompt = LONG_AND_ODD[label]
    REPORT.examples("unicode / long prompts", 1)
    before = len(server.requests)
    result = magic_shell.run_cell(f"%%meshimg --no-display\n{prompt}").result
    sent = [r for r in server.requests[before:] if r.path == "/v1/images/generations"]
    assert len(result) == 1 and len(sent) == 1
    assert sent[0].json["prompt"] == prompt.strip(), "sent exactly as typed"
    assert result[0].prompt == prompt.strip()


def test_lone_surrogate_fails_clearly(magic_shell: Any, server: Any) -> None:
    REPORT.examples("unicode / long prompts", 1)
    before = len(server.requests)
    with pytest.raises(UsageError, match="UTF-8"):
        magic_shell.run_cell("%%meshimg --no-display\na broken \ud83d surrogate")
    assert len(server.requests) == before

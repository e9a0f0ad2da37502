"""Class 2: keys that break things, through every door a key comes in.

A key with a smart quote, a newline, a control or an invisible character is refused
when it is set (login, configure, the environment, a call's api_key=, the config
magic, a remembered key) with one line that shows no part of it, and nothing is
sent; surrounding ASCII whitespace is dropped and the key works. A key-shaped word
typed in the wrong place is never repeated by a magic.

Test functions take the *name* of a variant, never the bad key itself: a test
frame's locals are searched too (they are what `pytest -l` would print).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import mesh_magic
from mesh_magic import MeshImageError
from mesh_magic.core import config as _config, key_sources
from mesh_magic.core.errors import InvalidOptionError
from mesh_magic.core.keys import SECRETS, ApiKey, hide_keys, key_problem
from tests.reliability.adversarial.hostile import HostileServer
from tests.reliability.adversarial.leaks import Hunt, hunt_error
from tests.reliability.adversarial.tally import example
from tests.support.sentinel import SENTINEL_KEY as KEY

CLASS = "2 keys that break things"
pytestmark = pytest.mark.adversarial(CLASS)

GEN = "/v1/images/generations"

BAD: dict[str, Callable[[], str]] = {
    "trailing smart double quote": lambda: KEY + "\u201d",
    "leading smart double quote": lambda: "\u201c" + KEY,
    "smart quotes around": lambda: "\u201c" + KEY + "\u201d",
    "smart single quotes around": lambda: "\u2018" + KEY + "\u2019",
    "newline inside": lambda: KEY[:12] + "\n" + KEY[12:],
    "crlf inside": lambda: KEY[:12] + "\r\n" + KEY[12:],
    "tab inside": lambda: KEY[:12] + "\t" + KEY[12:],
    "space inside": lambda: KEY[:12] + " " + KEY[12:],
    "nul inside": lambda: KEY[:12] + "\x00" + KEY[12:],
    "escape inside": lambda: KEY[:12] + "\x1b[31m" + KEY[12:],
    "del at the end": lambda: KEY + "\x7f",
    "zero-width space at the end": lambda: KEY + "\u200b",
    "no-break space at the end": lambda: KEY + "\u00a0",
    "byte order mark in front": lambda: "\ufeff" + KEY,
    "line separator inside": lambda: KEY[:12] + "\u2028" + KEY[12:],
    "cyrillic a inside": lambda: KEY.replace("a", "\u0430", 1),
    "accented letter": lambda: KEY + "\u00e9",
    "emoji": lambda: KEY + "\U0001f511",
    "fullwidth letters": lambda: KEY[:-2] + "\uff41\uff42",
}

SURROUNDED: dict[str, Callable[[], str]] = {
    "spaces around": lambda: "  " + KEY + "  ",
    "newline after": lambda: KEY + "\n",
    "crlf after": lambda: KEY + "\r\n",
    "tab before": lambda: "\t" + KEY,
}


@pytest.fixture
def target(hostile: HostileServer, monkeypatch: pytest.MonkeyPatch) -> HostileServer:
    monkeypatch.setenv("MESHAPI_BASE_URL", hostile.base_url)
    mesh_magic.configure(max_retries=0)
    return hostile


def _generations(server: HostileServer) -> int:
    return sum(1 for r in server.requests if r.path.startswith(GEN))


def _refused(action: Callable[[], Any]) -> MeshImageError:
    with pytest.raises(MeshImageError) as info:
        action()
    return info.value


def _check_refusal(err: BaseException, server: HostileServer, where: str) -> None:
    assert isinstance(err, InvalidOptionError), f"{type(err).__name__}: {err}"
    message = str(err)
    assert "\n" not in message and len(message) < 400, message
    assert "cannot be sent" in message and "position" in message, message
    hunt = Hunt()
    hunt_error(hunt, err, where)
    hunt.check()
    assert _generations(server) == 0, "a request was sent with a broken key"


def _set_by_login(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    mesh_magic.login(BAD[variant]())


def _set_by_configure(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the key is now in your notebook": not for a refused key
        mesh_magic.configure(api_key=BAD[variant]())


def _set_by_session(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _config.session().set_api_key(BAD[variant]())


def _set_by_call(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    mesh_magic.generate("a cat", model="google/imagen-4", api_key=BAD[variant]())


def _set_by_env(name: str) -> Callable[[str, pytest.MonkeyPatch], None]:
    def setter(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(name, BAD[variant]().replace("\x00", "\x01"))  # the OS takes no NUL
        mesh_magic.generate("a cat", model="google/imagen-4")

    return setter


def _set_by_remembered_file(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = key_sources.key_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BAD[variant](), encoding="utf-8", errors="surrogatepass")
    path.chmod(0o600)
    key_sources.forget_lookups()
    mesh_magic.generate("a cat", model="google/imagen-4")


DOORS: dict[str, Callable[[str, pytest.MonkeyPatch], None]] = {
    "login": _set_by_login,
    "configure": _set_by_configure,
    "session": _set_by_session,
    "call api_key": _set_by_call,
    "env MESHAPI_API_KEY": _set_by_env("MESHAPI_API_KEY"),
    "env MESH_API_KEY": _set_by_env("MESH_API_KEY"),
    "remembered file": _set_by_remembered_file,
}
# Every door for the worst offenders; the first two doors for the rest.
WORST = ("trailing smart double quote", "newline inside", "zero-width space at the end", "nul inside")
CASES = [(door, variant) for variant in BAD for door in (DOORS if variant in WORST else list(DOORS)[:2])]


@pytest.mark.parametrize(("door", "variant"), CASES)
def test_a_broken_key_is_refused_when_set(
    door: str, variant: str, target: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    err = _refused(lambda: DOORS[door](variant, monkeypatch))
    _check_refusal(err, target, f"{door}/{variant}")


@pytest.mark.parametrize("variant", sorted(BAD))
def test_a_refused_key_leaves_the_session_key_alone(variant: str, target: HostileServer) -> None:
    mesh_magic.login(KEY)
    _refused(lambda: mesh_magic.login(BAD[variant]()))
    mesh_magic.generate("a cat", model="google/imagen-4")
    assert target.sent_keys()[-1] == f"Bearer {KEY}"


@pytest.mark.parametrize("door", ["login", "env", "configure"])
@pytest.mark.parametrize("variant", sorted(SURROUNDED))
def test_surrounding_whitespace_is_dropped(
    door: str, variant: str, target: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    if door == "login":
        mesh_magic.login(SURROUNDED[variant]())
    elif door == "env":
        monkeypatch.setenv("MESHAPI_API_KEY", SURROUNDED[variant]())
    else:
        with pytest.warns(UserWarning):
            mesh_magic.configure(api_key=SURROUNDED[variant]())
    mesh_magic.generate("a cat", model="google/imagen-4")
    assert target.sent_keys()[-1] == f"Bearer {KEY}"


MAGIC_VARIANTS = [v for v in sorted(BAD) if not any(c.isspace() for c in BAD[v]())]


@pytest.mark.parametrize("variant", MAGIC_VARIANTS)
def test_a_broken_key_in_the_config_magic_is_a_usage_error_without_it(
    variant: str, shell: Any, target: HostileServer, capsys: Any
) -> None:
    from IPython.core.error import UsageError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UsageError) as info:
            shell.run_line_magic("meshimg_config", "api_key=" + BAD[variant]())
    assert "cannot be sent" in str(info.value)
    hunt = Hunt()
    hunt.scan(str(info.value), "usage error")
    captured = capsys.readouterr()
    hunt.scan(captured.out + captured.err, "stdout/stderr")
    hunt.check()
    assert _config.session().api_key is None
    assert _generations(target) == 0


SOURCES = ["colab secret", "keyring"]


@pytest.mark.parametrize("variant", WORST)
@pytest.mark.parametrize("source", SOURCES)
def test_a_broken_key_from_a_key_source_is_refused(
    source: str, variant: str, target: HostileServer, request: pytest.FixtureRequest
) -> None:
    """A Colab secret or a keyring entry holding a pasted key with a stray character."""
    if source == "colab secret":
        request.getfixturevalue("colab").share(BAD[variant]().replace("\x00", "\x01"))
    else:
        keyring = request.getfixturevalue("file_keyring")
        keyring.backend.set_password(
            key_sources.KEYRING_SERVICE, key_sources.KEYRING_USERNAME, BAD[variant]().replace("\x00", "\x01")
        )
        key_sources.forget_lookups()
    err = _refused(lambda: mesh_magic.generate("a cat", model="google/imagen-4"))
    _check_refusal(err, target, f"{source}/{variant}")
    assert source.split()[0].lower() in str(err).lower(), "the message says where the key came from"


# -- the magics: a key-shaped word in the wrong place ------------------------------------

STRAY_WORDS = [
    "%meshimg_config {k}",
    "%meshimg_config api_key {k}",
    "%meshimg_config apikey={k}",
    "%meshimg_config api-key={k}",
    "%meshimg_config model=x {k}",
    "%meshimg_config --{k}",
    "%meshimg_config cache={k}",
    "%meshimg_config size={k}",
    "%meshimg_config base_url={k}",
    "%meshimg_config n={k}",
    "%meshimg_config stream={k}",
    "%meshimg_config timeout={k}",
    "%meshimg_models --op {k}",
    "%meshimg_models --sort {k}",
    "%meshimg_models --max-price {k}",
    "%meshimg_history --{k}",
    "%meshimg_cost {k}",
    "%%meshimg {k}\na cat",
    "%%meshimg --api-key {k}\na cat",
    "%%meshimg -m x --{k}\na cat",
    "%%meshimg -p {k}\na cat",
    "%%meshimg -s {k}\na cat",
    "%%meshimg -n {k}\na cat",
    "%%meshimg -q {k}\na cat",
    "%%meshimg --timeout {k}\na cat",
]


@pytest.mark.parametrize("template", STRAY_WORDS)
def test_a_key_shaped_word_is_never_repeated_by_a_magic(
    template: str, shell: Any, target: HostileServer, published: Any, capsys: Any
) -> None:
    hunt = Hunt()
    try:
        value = shell.run_cell(template.format(k=KEY)).result
    except Exception as exc:  # noqa: BLE001 - whatever comes out is searched
        hunt.scan(type(exc).__name__ + ": " + str(exc), "error text")
        render = getattr(exc, "_render_traceback_", None)
        if render is not None:
            hunt.scan("\n".join(render()), "rendered")
    else:
        hunt.scan(repr(value), "value")
    for shown in published:
        hunt.scan(repr(shown.data), "display")
    captured = capsys.readouterr()
    hunt.scan(captured.out + captured.err, "stdout/stderr")
    hunt.check()
    assert _generations(target) == 0


# -- properties ------------------------------------------------------------------------------

PRINTABLE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=8, max_size=80)
BREAKING = st.one_of(
    st.characters(max_codepoint=0x1F),
    st.sampled_from(["\x7f", " ", "\u00a0", "\u200b", "\u2028", "\ufeff", "\u201c", "\u201d", "\u2019"]),
    st.characters(min_codepoint=0x80),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=PRINTABLE)
def test_any_printable_ascii_key_is_kept_as_is(body: str) -> None:
    example(CLASS)
    key = ApiKey(f" {body}\n")
    assert key.reveal() == body
    assert body not in repr(key) or len(body) < 8
    assert key_problem(body) is None


@settings(max_examples=200, deadline=None)
@given(body=PRINTABLE, bad=BREAKING, where=st.integers(min_value=1, max_value=79))
def test_any_key_with_a_breaking_character_inside_is_refused_without_showing_it(
    body: str, bad: str, where: int
) -> None:
    example(CLASS)
    cut = min(where, len(body) - 1)

    def refusal(text: str) -> str:
        with pytest.raises(InvalidOptionError) as info:
            ApiKey(text[:cut] + bad + text[cut:])
        return str(info.value)

    message = refusal(body)
    assert "\n" not in message
    # The message depends only on the length, the position and the kind of character:
    # the same for any other key of that length, so it cannot hold any part of this one.
    assert message == refusal("A" * len(body))


@settings(max_examples=150, deadline=None)
@given(body=st.text(st.characters(min_codepoint=0x30, max_codepoint=0x7A), min_size=4, max_size=60))
def test_hide_keys_masks_every_key_shaped_word(body: str) -> None:
    example(CLASS)
    word = "rsk_" + body.replace("'", "").replace('"', "") + "XYZW"
    masked = hide_keys(f"got '{word}' here")
    assert word not in masked
    assert "rsk_" in masked


def test_made_keys_are_scrubbed_and_short_ones_are_not(tmp_path: Path) -> None:
    ApiKey(KEY)
    assert SECRETS.scrub(f"x {KEY} y") == "x *** y"
    ApiKey("abc")  # too short to scrub without mangling ordinary words
    assert SECRETS.scrub("abc def") == "abc def"

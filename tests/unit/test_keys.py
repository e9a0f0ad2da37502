"""core.keys: the key holder's checks, the redactor, the log filter, and raising without frames."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator

import pytest

from mesh_magic.core.errors import InvalidOptionError, ResponseError
from mesh_magic.core.keys import (
    SECRETS,
    ApiKey,
    KeyLogFilter,
    Redactor,
    detached,
    forgets_key_arguments,
    hide_keys,
    key_from_environment,
    key_problem,
    optional_key,
)

KEY = "rsk_unit_keys_0123456789abcdef"


@pytest.fixture(autouse=True)
def forget_keys() -> Iterator[None]:
    before = SECRETS.known()
    yield
    SECRETS.restore(before)


def test_surrounding_ascii_whitespace_is_dropped() -> None:
    assert ApiKey(f" \t{KEY}\r\n").reveal() == KEY


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (KEY + "\u201d", "non-ASCII"),
        (KEY[:5] + "\n" + KEY[5:], "space or line break"),
        (KEY[:5] + "\x00" + KEY[5:], "control character"),
        (KEY + "\x7f", "control character"),
        (KEY + "\u00a0", "space or line break"),
        ("\u200b" + KEY, "non-ASCII"),
    ],
)
def test_a_breaking_character_is_refused_by_kind_and_position(text: str, kind: str) -> None:
    with pytest.raises(InvalidOptionError, match=kind) as info:
        ApiKey(text, "The key in MESHAPI_API_KEY")
    message = str(info.value)
    assert message.startswith("The key in MESHAPI_API_KEY has")
    assert KEY[5:15] not in message and "\n" not in message
    tb = info.value.__traceback__
    assert tb is not None and tb.tb_next is not None
    inner = tb.tb_next.tb_frame.f_locals  # ApiKey.__init__ (the first frame is this test's)
    assert all(KEY[5:15] not in repr(v) for v in inner.values()), inner


def test_key_problem_says_nothing_for_a_good_key() -> None:
    assert key_problem(KEY) is None
    assert key_problem("a b") == "has a space or line break at position 2 of 3"


def test_optional_key_treats_blank_as_missing_and_keeps_an_apikey() -> None:
    assert optional_key("  \n", "x") is None
    assert optional_key(None, "x") is None
    held = ApiKey(KEY)
    assert optional_key(held, "x") is held


def test_a_bad_environment_key_names_the_variable() -> None:
    with pytest.raises(InvalidOptionError, match="The key in MESH_API_KEY"):
        key_from_environment({"MESH_API_KEY": KEY + "\u2019"})
    key, source = key_from_environment({"MESHAPI_API_KEY": f"  {KEY}\n"})
    assert key == ApiKey(KEY) and source == "env MESHAPI_API_KEY"


def test_redactor_scrubs_raw_url_and_json_forms() -> None:
    redactor = Redactor()
    odd = "rsk_odd/key+with=chars"
    redactor.add(odd)
    assert redactor.scrub(f"a {odd} b") == "a *** b"
    assert redactor.scrub("a rsk_odd%2Fkey%2Bwith%3Dchars b") == "a *** b"
    assert redactor.scrub_tree({"k": [f"x{odd}"], "b64_json": odd}, skip=frozenset({"b64_json"})) == {
        "k": ["x***"],
        "b64_json": odd,
    }
    assert odd not in repr(redactor)
    with pytest.raises(TypeError):
        pickle.dumps(redactor)


def test_redactor_ignores_short_keys_and_keeps_the_most_recent() -> None:
    redactor = Redactor()
    redactor.add("short")
    assert len(redactor) == 0
    for i in range(Redactor.LIMIT + 5):
        redactor.add(f"rsk_many_{i:04d}")
    assert len(redactor) == Redactor.LIMIT
    assert redactor.scrub("rsk_many_0000") == "rsk_many_0000"
    assert redactor.scrub(f"rsk_many_{Redactor.LIMIT + 4:04d}") == "***"


def test_hide_keys_masks_known_and_key_shaped_words() -> None:
    ApiKey(KEY)
    assert KEY not in hide_keys(f"got {KEY}")
    assert "rsk_typed_by_mistake" not in hide_keys("got 'rsk_typed_by_mistake_xyz'")
    assert hide_keys("rsk_…abcd stays") == "rsk_…abcd stays"


def test_the_log_filter_redacts_message_args_and_exception_text() -> None:
    ApiKey(KEY)
    try:
        raise RuntimeError(KEY)
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "httpcore.http11", logging.DEBUG, __file__, 1, "h=%r", ([KEY],), sys.exc_info()
        )
    assert KeyLogFilter().filter(record) is True
    assert KEY not in record.getMessage()
    assert record.exc_text is not None and KEY not in record.exc_text
    assert "***" in record.getMessage()


def test_setting_a_key_puts_the_filter_on_httpcore_loggers() -> None:
    ApiKey(KEY)
    for name in ("httpx", "httpcore", "httpcore.http11", "httpcore.connection"):
        assert any(isinstance(f, KeyLogFilter) for f in logging.getLogger(name).filters), name


def test_forgets_key_arguments_raises_from_a_frame_without_them() -> None:
    @forgets_key_arguments
    def take(key: str) -> None:
        raise InvalidOptionError("refused")

    with pytest.raises(InvalidOptionError) as info:
        take(KEY)
    tb = info.value.__traceback__
    shown = []
    while tb is not None:
        shown += [repr(v) for v in tb.tb_frame.f_locals.values()]
        tb = tb.tb_next
    assert not any(KEY in s for s in shown)
    assert info.value.__context__ is None


def test_detached_drops_traceback_and_chain() -> None:
    try:
        try:
            raise ValueError(KEY)
        except ValueError:
            raise ResponseError("translated") from None
    except ResponseError as exc:
        error = detached(exc)
    assert error.__traceback__ is None and error.__context__ is None and error.__cause__ is None

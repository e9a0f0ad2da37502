"""Class 3 as properties: wherever a server hides the key in an answer, the parsers drop it.

Hypothesis builds answers (generation bodies, stream events, error bodies and headers)
with the key inside random strings at random depths, and checks the two places
answers are read (core/parsing.py, core/http/outcomes.py) hand back nothing that
holds it. MockTransport-free: these are the pure parsing functions.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import httpx
import pytest
from hypothesis import given, settings, strategies as st

from mesh_magic.core.http.outcomes import error_from_response
from mesh_magic.core.keys import SECRETS, ApiKey
from mesh_magic.core.parsing import classify_event, parse_generation
from tests.reliability.adversarial.tally import example
from tests.support.images import b64, tagged_png
from tests.support.sentinel import SENTINEL_KEY as KEY

CLASS = "3 secrets echoed by the server"
pytestmark = pytest.mark.adversarial(CLASS)
PNG = b64(tagged_png("p"))
FIELDS = [
    "revised_prompt",
    "url",
    "request_id",
    "message",
    "code",
    "note",
    "status",
    "type",
    "object",
    "error",
]

TEXT = st.text(max_size=12)
WITH_KEY = st.builds(
    lambda a, b, form: a + form + b, TEXT, TEXT, st.sampled_from([KEY, json.dumps(KEY)[1:-1]])
)
LEAF = st.one_of(WITH_KEY, TEXT, st.integers(), st.none(), st.booleans())
TREE = st.recursive(
    LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(FIELDS) | WITH_KEY, inner, max_size=3)
    ),
    max_leaves=12,
)


def _no_key(*things: Any) -> None:
    for thing in things:
        text = thing if isinstance(thing, str) else repr(thing)
        assert KEY not in text, text


@pytest.fixture(autouse=True)
def key_known() -> None:
    ApiKey(KEY)


@settings(max_examples=200, deadline=None)
@given(item=st.dictionaries(st.sampled_from(FIELDS) | WITH_KEY, TREE, max_size=5), top=TREE)
def test_a_generation_body_hides_the_key_anywhere(item: dict[str, Any], top: Any) -> None:
    example(CLASS)
    body = {"created": 1, "data": [{**item, "b64_json": PNG}, item], "usage": top, "size": top}
    try:
        parsed = parse_generation(body)
    except Exception as exc:  # noqa: BLE001 - a refusal must not carry the key either
        _no_key(str(exc), repr(exc.args))
        return
    _no_key(parsed.items, parsed.usage, parsed.extra, [(i, str(e)) for i, e in parsed.item_errors])


@settings(max_examples=200, deadline=None)
@given(event=st.sampled_from(["", "image.chunk", "error", KEY]), payload=TREE)
def test_a_stream_event_hides_the_key_anywhere(event: str, payload: Any) -> None:
    example(CLASS)
    try:
        parsed = classify_event(event, json.dumps(payload))
    except Exception as exc:  # noqa: BLE001
        _no_key(str(exc), repr(exc.args))
        return
    _no_key(parsed.payload, parsed.kind)


@settings(max_examples=250, deadline=None)
@given(
    status=st.integers(min_value=300, max_value=599),
    body=TREE,
    header=st.sampled_from(["x-request-id", "retry-after", "content-type", "x-echo"]),
    value=WITH_KEY.filter(lambda v: v.isprintable() and v.isascii()),
)
def test_an_error_answer_hides_the_key_anywhere(status: int, body: Any, header: str, value: str) -> None:
    example(CLASS)
    err = error_from_response(status, httpx.Headers({header: value}), json.dumps(body).encode())
    _no_key(str(err), repr(err), repr(vars(err)), "\n".join(err._render_traceback_()))
    assert KEY.encode() not in pickle.dumps(err)


@settings(max_examples=150, deadline=None)
@given(key=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=8, max_size=40), pad=TEXT)
def test_scrub_leaves_no_raw_url_or_json_form_of_a_known_key(key: str, pad: str) -> None:
    example(CLASS)
    ApiKey(key)
    from urllib.parse import quote

    for form in {key, quote(key, safe=""), json.dumps(key)[1:-1]}:
        scrubbed = SECRETS.scrub(pad + form + pad)
        assert form not in scrubbed or "*" in key, scrubbed

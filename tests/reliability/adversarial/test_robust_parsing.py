"""Class 4 at the parsing layer: junk answers become typed values or a `ResponseError`, nothing else.

Hypothesis builds generation bodies and event streams around the real shapes with
junk in every field (numbers where strings go, 1e20 timestamps, lists for b64_json,
deep nesting); the parsers must answer typed values or a `MeshImageError`. Then the
same junk goes through the whole client (httpx MockTransport, a remote-looking API):
`generate` returns a result or raises a `MeshImageError`, and whatever it returns
decodes completely.
"""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import mesh_magic
from mesh_magic.core.constants import MAX_TIMESTAMP
from mesh_magic.core.errors import MeshImageError, ResponseError
from mesh_magic.core.http.streaming import _StreamState
from mesh_magic.core.parsing import ParsedGeneration, classify_event, parse_generation
from tests.support.images import b64, make_png
from tests.support.mock_api import json_response, use_mock

EXAMPLES = 120
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PNG = make_png(8, 8)
GOOD_B64 = b64(PNG)
WEIRD_URLS = [
    "http://[::1/x.png",
    "https://example.test:99999/x.png",
    "https://exa mple.test/x.png",
    "http://",
    "https://",
    "https://[]/x",
    "https://\x00.test/x.png",
    "ftp://example.test/x.png",
    "data:image/png;base64,!!!",
    "data:text/plain,hello",
    "data:;base64," + GOOD_B64,
    "https://api.example.test/files/junk.png",
    "https://api.example.test/files/good.png",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e20, -1e20, 1.5e308, 0.0, -1, 2**63, "yesterday", ""])
    | st.text(max_size=12)
)
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
b64_fields = st.one_of(junk, st.just(GOOD_B64), st.just("!!not base64!!"), st.just(b64(b"not an image")))
url_fields = st.one_of(junk, st.sampled_from(WEIRD_URLS))
GOOD_ITEM = {"b64_json": GOOD_B64}
items = st.one_of(
    st.just(GOOD_ITEM),
    st.fixed_dictionaries(
        {"b64_json": st.just(GOOD_B64)}, optional={"revised_prompt": junk, "url": url_fields}
    ),
    junk,
    st.fixed_dictionaries(
        {},
        optional={"b64_json": b64_fields, "url": url_fields, "revised_prompt": junk, "index": junk},
    ),
)
bodies = st.one_of(
    junk,
    st.fixed_dictionaries(
        {"data": st.one_of(st.lists(items, min_size=1, max_size=3), junk)},
        optional={"created": junk, "usage": junk, "size": junk, "quality": junk, "output_format": junk},
    ),
)


def _check_parsed(parsed: ParsedGeneration) -> None:
    assert parsed.created is None or (type(parsed.created) is int and 0 < parsed.created <= MAX_TIMESTAMP)
    assert isinstance(parsed.usage, dict)
    assert all(isinstance(v, str) for v in parsed.extra.values())
    for item in parsed.items:
        set_fields = [v for v in (item.b64, item.data_uri, item.url) if v is not None]
        assert len(set_fields) == 1 and isinstance(set_fields[0], str) and set_fields[0]
        assert item.revised_prompt is None or isinstance(item.revised_prompt, str)
    assert all(isinstance(err, ResponseError) for _, err in parsed.item_errors)


@pytest.mark.adversarial("4")
def test_junk_bodies_parse_into_typed_values_or_a_response_error(tally: Any) -> None:
    seen = [0]

    @PROPERTY
    @given(bodies)
    def check(body: Any) -> None:
        seen[0] += 1
        try:
            parsed = parse_generation(body)
        except ResponseError:
            return
        _check_parsed(parsed)

    check()
    tally.tried("4", seen[0])


GOOD_EVENTS = [
    json.dumps({"type": "image_generation.completed", "b64_json": GOOD_B64, "created": 1e20}),
    json.dumps({"object": "image.chunk", "status": "completed", "data": [GOOD_ITEM], "created": "now"}),
    json.dumps(
        {"type": "image_generation.partial_image", "b64_json": GOOD_B64, "partial_image_index": 1e300}
    ),
]
event_data = st.one_of(
    st.sampled_from(GOOD_EVENTS),
    st.text(max_size=20),
    st.just("[" * 50_000),
    junk.map(json.dumps),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["image_generation.partial_image", "image_generation.completed", "error"])},
        optional={"b64_json": b64_fields, "created": junk, "usage": junk, "partial_image_index": junk},
    ).map(json.dumps),
    st.fixed_dictionaries(
        {"object": st.just("image.chunk")},
        optional={"data": st.lists(items, max_size=2), "status": junk, "created": junk},
    ).map(json.dumps),
    st.fixed_dictionaries({"error": junk}, optional={"request_id": junk}).map(json.dumps),
)
streams = st.lists(
    st.tuples(st.sampled_from(["", "message", "error", "image_generation.completed"]), event_data), max_size=5
)


@pytest.mark.adversarial("4")
def test_junk_streams_end_in_typed_values_or_a_mesh_error(tally: Any) -> None:
    seen = [0]

    @PROPERTY
    @given(streams)
    def check(events: list[tuple[str, str]]) -> None:
        seen[0] += 1
        state = _StreamState("req_x", lambda text: text)
        for name, data in events:
            try:
                event = classify_event(name, data)
            except ResponseError:
                break
            assert event.b64 is None or isinstance(event.b64, str)
            assert type(event.index) is int
            if not state.feed(event):
                break
        try:
            outcome = state.outcome()
        except MeshImageError:
            return
        _check_parsed(outcome.parsed)
        assert outcome.failure is None or isinstance(outcome.failure, MeshImageError)

    check()
    tally.tried("4", seen[0])


def _answer(body: Any, stream: bool) -> httpx.Response:
    if stream:
        events = body if isinstance(body, list) else [("", json.dumps(body))]
        text = "".join((f"event: {name}\n" if name else "") + f"data: {data}\n\n" for name, data in events)
        return httpx.Response(200, content=text.encode(), headers={"content-type": "text/event-stream"})
    return json_response(body)


def _handler(body: Any, stream: bool) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":  # an image URL from the answer
            good = request.url.path.endswith("good.png")
            return httpx.Response(200, content=PNG if good else b"<html>nope</html>")
        return _answer(body, stream)

    return handle


def _assert_whole(result: mesh_magic.ImageResult, tally: Any) -> None:
    from PIL import Image

    for image in result:
        try:
            with Image.open(io.BytesIO(image.data)) as img:
                img.load()
        except Exception:  # noqa: BLE001 - counted, then failed
            tally.bad("corrupt_accepted")
            raise
    assert all(isinstance(item.error, MeshImageError) for item in result.errors)


def _generate_through_client(body: Any, stream: bool, tally: Any) -> None:
    use_mock(_handler(body, stream))
    try:
        result = mesh_magic.generate("junk", model="m/a", stream=stream, cache="off", max_retries=0)
    except MeshImageError:
        return
    except BaseException:
        tally.bad("raw_escapes")
        raise
    _assert_whole(result, tally)


@pytest.mark.adversarial("4")
def test_junk_answers_through_the_client_raise_nothing_raw(tally: Any) -> None:
    seen = [0]

    @settings(PROPERTY, max_examples=80)
    @given(bodies)
    def check(body: Any) -> None:
        seen[0] += 1
        _generate_through_client(body, False, tally)

    check()
    tally.tried("4", seen[0])


@pytest.mark.adversarial("4")
def test_junk_streams_through_the_client_raise_nothing_raw(tally: Any) -> None:
    seen = [0]

    @settings(PROPERTY, max_examples=80)
    @given(streams)
    def check(events: list[tuple[str, str]]) -> None:
        seen[0] += 1
        _generate_through_client(events, True, tally)

    check()
    tally.tried("4", seen[0])


# The answers of the issue, each on its own: one item is bad, the answer's other item survives.
BAD_ITEMS = [
    {"url": "http://[::1/x.png"},
    {"url": "https://example.test:99999/x.png"},
    {"b64_json": 5},
    {"b64_json": [1, 2]},
    {"b64_json": {"a": 1}},
    {"b64_json": True},
    {"b64_json": "!!!"},
    {"url": 12},
    {"url": "data:image/png;base64,@@@"},
    {},
]


@pytest.mark.adversarial("4")
@pytest.mark.parametrize("bad", BAD_ITEMS, ids=[json.dumps(b) for b in BAD_ITEMS])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_one_bad_item_fails_alone(bad: dict[str, Any], stream: bool) -> None:
    body = {"created": 1e20, "data": [bad, {"b64_json": GOOD_B64}], "usage": "lots"}
    use_mock(_handler(body, stream))
    result = mesh_magic.generate("two", model="m/a", n=2, stream=stream, cache="off")
    (image,) = result
    assert image.data == PNG and image.created is not None
    (failure,) = result.errors
    assert isinstance(failure.error, MeshImageError)

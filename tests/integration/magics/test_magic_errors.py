"""Errors through the magic: every status, validation before sending, retries and n fallback."""

from __future__ import annotations

import time
from typing import Any

import pytest
from IPython.core.error import UsageError

from mesh_magic import (
    APIConnectionError,
    AuthenticationError,
    InvalidRequestError,
    ModelNotFoundError,
    RateLimitError,
    ResponseError,
    ServerError,
    UnsupportedModelError,
    configure,
)
from mesh_magic.server import Fault, MeshServer
from tests.support.error_statuses import STATUSES
from tests.support.published import Publications
from tests.support.servers import free_port, generations
from tests.support.shell import run

CELL = "%%meshimg -s 128x128\na red fox"


def shown_traceback(shell: Any, capsys: pytest.CaptureFixture[str]) -> str:
    """What the user sees for the last error: IPython prints _render_traceback_ output."""
    captured = capsys.readouterr()
    return captured.out + captured.err


@pytest.mark.parametrize("status", sorted(STATUSES))
@pytest.mark.parametrize("envelope", ["mesh", "fastapi", "html"])
def test_every_status_maps_to_its_error(
    shell: Any,
    server: MeshServer,
    published: Publications,
    capsys: pytest.CaptureFixture[str],
    status: int,
    envelope: str,
) -> None:
    cls, hint = STATUSES[status]
    configure(max_retries=0)
    server.add_fault(
        Fault(kind="status", status=status, envelope=envelope, times=-1, message=f"custom {status} message")
    )
    with pytest.raises(cls) as info:
        run(shell, CELL)
    err = info.value
    assert type(err) is cls
    assert err.status == status
    assert err.request_id and err.request_id.startswith("req_")
    if envelope == "html":
        assert "HTML page" in err.message
    else:
        assert err.message == f"custom {status} message"
    if envelope == "mesh":
        assert err.code  # the envelope's error code
    lines = err._render_traceback_()
    assert len(lines) <= 3
    assert hint in "\n".join(lines)
    shown = shown_traceback(shell, capsys)
    assert hint in shown
    assert "Traceback" not in shown
    assert len(shown.strip().splitlines()) <= 6
    assert len(generations(server)) == 1
    assert server.api_key not in shown + str(err)
    assert published == []  # no half-drawn grid


def test_rate_limit_hint_states_the_wait(shell: Any, server: MeshServer, published: Publications) -> None:
    configure(max_retries=0)
    server.add_fault(Fault(kind="status", status=429, retry_after="30", times=-1))
    with pytest.raises(RateLimitError) as info:
        run(shell, CELL)
    assert info.value.retry_after == 30
    assert "retry after 30 s" in "\n".join(info.value._render_traceback_())


def test_fastapi_field_errors_reach_the_user(shell: Any, server: MeshServer, published: Publications) -> None:
    server.add_fault(Fault(kind="status", status=422, message="Input should be a valid integer"))
    with pytest.raises(InvalidRequestError) as info:
        run(shell, CELL)
    assert info.value.field_errors == [{"field": "body", "message": "Input should be a valid integer"}]
    assert "Input should be a valid integer" in str(info.value)


def test_real_server_validation_errors(shell: Any, server: MeshServer, published: Publications) -> None:
    with pytest.raises(ModelNotFoundError, match="not-a/model"):
        run(shell, "%%meshimg -m not-a/model\nfox")
    with pytest.raises(UnsupportedModelError, match="cannot generate images"):
        run(shell, "%%meshimg -m openai/gpt-4o-mini\nfox")
    with pytest.raises(InvalidRequestError, match="size"):
        run(shell, "%%meshimg -s 32x32\nfox")  # fine locally, below the server's 64 px minimum


def test_bad_key_is_an_authentication_error(shell: Any, server: MeshServer, published: Publications) -> None:
    from mesh_magic.core import config as _config

    _config.session().set_api_key("rsk_wrong_key_000000000000")
    with pytest.raises(AuthenticationError) as info:
        run(shell, CELL)
    assert "rsk_wrong_key_000000000000" not in str(info.value)
    assert generations(server)[0].headers["authorization"] == "Bearer rsk_wrong_key_000000000000"


def test_missing_key(shell: Any, server: MeshServer, published: Publications) -> None:
    from mesh_magic.core import config as _config

    _config.session().set_api_key(None)
    with pytest.raises(AuthenticationError) as info:
        run(shell, CELL)
    assert "authorization" not in generations(server)[0].headers
    assert "--login" in info.value.hint


@pytest.mark.parametrize(
    ("cell", "match"),
    [
        ("%%meshimg\n   \n", "prompt is empty"),
        ("%%meshimg\na\n---\n\n", "prompt is empty"),
        ("%meshimg -n 2", "prompt is empty"),
        ("%%meshimg -n 0\nfox", "n must"),
        ("%%meshimg -n 11\nfox", "n must"),
        ("%%meshimg -n two\nfox", "n must"),
        ("%%meshimg -s enormous\nfox", "size 'enormous' is not understood"),
        ("%%meshimg -s 9x9\nfox", "out of range"),
        ("%%meshimg -q ultra\nfox", "quality must be one of"),
        ("%%meshimg -f gif\nfox", "output_format must be one of"),
        ("%%meshimg --response-format png\nfox", "response_format must be one of"),
        ("%%meshimg --bogus\nfox", "unrecognized arguments: --bogus"),
        ("%%meshimg -p seed\nfox", "-p expects KEY=VALUE"),
        ("%%meshimg -p n=3\nfox", "-p n clashes"),
        ("%%meshimg -p 'bad key=1'\nfox", "not a valid field name"),
        ("%%meshimg -o 1abc\nfox", "-o needs a Python variable name"),
        ("%%meshimg --timeout soon\nfox", "timeout must be a number of seconds"),
        ("%%meshimg --timeout 0\nfox", "timeout must be between"),
        ("%%meshimg -m ' , '\nfox", "No model given"),
        ("%%meshimg extra words\nfox", "prompt goes in the cell body"),
        ("%%meshimg --save 'unclosed\nfox", "Could not read the options"),
    ],
)
def test_validation_errors_send_nothing(
    shell: Any, server: MeshServer, published: Publications, cell: str, match: str
) -> None:
    with pytest.raises(UsageError, match=match):
        run(shell, cell)
    assert server.requests == []
    assert published == []


def test_usage_error_is_one_line(
    shell: Any, server: MeshServer, published: Publications, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError):
        run(shell, "%%meshimg -n 0\nfox")
    shown = shown_traceback(shell, capsys)
    assert "Traceback" not in shown
    assert "UsageError: n must be from 1 to 10" in shown


# -- retries -----------------------------------------------------------------------------------


def test_503_then_success_is_retried(shell: Any, server: MeshServer, published: Publications) -> None:
    server.add_fault(Fault(kind="status", status=503))
    result = run(shell, CELL)
    requests = generations(server)
    assert len(requests) == 2
    assert requests[0].json == requests[1].json
    assert len(result) == 1 and result.ok
    assert published.html.count("<img ") == 1


def test_429_retry_after_is_waited(shell: Any, server: MeshServer, published: Publications) -> None:
    server.add_fault(Fault(kind="status", status=429, retry_after="1"))
    started = time.monotonic()
    result = run(shell, CELL)
    elapsed = time.monotonic() - started
    first, second = generations(server)
    assert elapsed >= 1.0
    assert second.time - first.time >= 0.95  # server clock: allow for timer granularity
    assert len(result) == 1


def test_503_retry_after_is_waited(shell: Any, server: MeshServer, published: Publications) -> None:
    server.add_fault(Fault(kind="status", status=503, retry_after="1"))
    started = time.monotonic()
    run(shell, "%%meshimg -s 128x128 --no-display\nfox")
    assert time.monotonic() - started >= 1.0
    first, second = generations(server)
    assert second.time - first.time >= 0.95


def test_500_is_not_retried(shell: Any, server: MeshServer, published: Publications) -> None:
    server.add_fault(Fault(kind="status", status=500))
    with pytest.raises(ServerError):
        run(shell, CELL)
    assert len(generations(server)) == 1


def test_retries_exhausted(shell: Any, server: MeshServer, published: Publications) -> None:
    configure(max_retries=1)
    server.add_fault(Fault(kind="status", status=502, retry_after="0", times=-1))
    with pytest.raises(ServerError) as info:
        run(shell, CELL)
    assert info.value.status == 502
    assert len(generations(server)) == 2


def test_long_retry_after_fails_fast(shell: Any, server: MeshServer, published: Publications) -> None:
    server.add_fault(Fault(kind="status", status=429, retry_after="600", times=-1))
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        run(shell, CELL)
    assert time.monotonic() - started < 5
    assert "600 s" in str(info.value)
    assert len(generations(server)) == 1


def test_connection_refused(shell: Any, server: MeshServer, published: Publications) -> None:

    port = free_port()  # a loopback port nobody listens on
    configure(base_url=f"http://127.0.0.1:{port}", max_retries=1)
    with pytest.raises(APIConnectionError, match=f"127.0.0.1:{port}") as info:
        run(shell, CELL)
    assert "MESHAPI_BASE_URL" in info.value.hint


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("malformed_json", "invalid JSON"),
        ("non_json", "invalid JSON"),
        ("empty_data", "no images"),
        ("missing_fields", "neither b64_json nor url"),
        ("corrupt_b64", "not valid base64"),
        ("not_image", "not an image"),
        ("truncated_image", "truncated"),
        ("huge_image", "too large"),
    ],
)
def test_malformed_responses(
    shell: Any, server: MeshServer, published: Publications, kind: str, match: str
) -> None:
    server.add_fault(Fault(kind=kind))
    with pytest.raises(ResponseError, match=match) as info:
        run(shell, CELL)
    assert info.value.request_id and info.value.request_id.startswith("req_")
    assert len(generations(server)) == 1


def test_one_failing_model_does_not_sink_the_others(
    shell: Any, server: MeshServer, published: Publications
) -> None:
    server.add_fault(Fault(kind="status", status=500, model="google/imagen-4", message="imagen exploded"))
    result = run(shell, "%%meshimg -m openai/gpt-image-1,google/imagen-4 -s 128x128\nfox")
    assert [im.model for im in result] == ["openai/gpt-image-1"]
    (failure,) = result.errors
    assert failure.model == "google/imagen-4" and failure.row == 1
    assert isinstance(failure.error, ServerError)
    assert "imagen exploded" in published.html
    assert published.html.count("<img ") == 1


# -- one image per request -----------------------------------------------------------------------


@pytest.mark.parametrize("model", ["openai/dall-e-3", "black-forest-labs/flux-1.1-pro"])
def test_n_on_a_single_image_model_falls_back(
    shell: Any, server: MeshServer, published: Publications, model: str
) -> None:
    result = run(shell, f"%%meshimg -m {model} -n 3 -s 128x128\na red fox")
    bodies = [r.json for r in generations(server)]
    assert [b["n"] for b in bodies] == [3, 1, 1, 1]
    assert len(result) == 3
    assert [im.index for im in result] == [0, 1, 2]
    assert any("one image per request" in note for note in result.notes)
    assert "one image per request" in published.html
    assert len(set(result.request_ids)) == 3

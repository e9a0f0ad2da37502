"""The key on the wire (core.http.auth) and the one httpx client factory (core.http.factory)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mesh_magic.core.constants import DEFAULT_TIMEOUT, OFFLINE_ROOT, USER_AGENT
from mesh_magic.core.http.auth import BearerAuth
from mesh_magic.core.http.factory import build_http_client
from mesh_magic.core.keys import ApiKey
from tests.support.mock_api import API_BASE, MOCK_KEY as UNIT_KEY

ROOT = f"{API_BASE}/v1"


def authorization(auth: BearerAuth, url: str) -> str | None:
    """The Authorization header `auth` puts on a GET of `url`."""
    request = httpx.Request("GET", url)
    flow = auth.sync_auth_flow(request)
    sent = next(flow)
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200))
    value = sent.headers.get("authorization")
    return None if value is None else str(value)


@pytest.mark.parametrize(
    "url",
    [
        ROOT,
        f"{ROOT}/",
        f"{ROOT}/images/generations",
        f"{ROOT}/models?type=image",
        f"{ROOT}/files/abc.png",
    ],
)
def test_header_under_the_root(url: str) -> None:
    assert authorization(BearerAuth(ApiKey(UNIT_KEY), ROOT), url) == f"Bearer {UNIT_KEY}"


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example.test/img.png",  # another host (image URLs)
        f"{API_BASE}/other",  # same host, outside the root
        f"{API_BASE}/",
        f"{API_BASE}/v10/models",  # a lookalike prefix
        f"{API_BASE}/v1models",
        f"{API_BASE}/v1-evil/models",
        "https://api.example.test.evil.test/v1/models",  # the root's host as a prefix of another
        "https://evil.test/https://api.example.test/v1/models",
        "http://api.example.test/v1/models",  # the same root over plain http
        "https://api.example.test:8443/v1/models",  # another port
    ],
)
def test_no_header_elsewhere(url: str) -> None:
    assert authorization(BearerAuth(ApiKey(UNIT_KEY), ROOT), url) is None


def test_trailing_slash_on_the_root_is_ignored() -> None:
    auth = BearerAuth(ApiKey(UNIT_KEY), ROOT + "/")
    assert auth.covers(f"{ROOT}/models")
    assert auth.covers(ROOT)
    assert not auth.covers(f"{API_BASE}/v1x")


def test_no_key_no_header() -> None:
    assert authorization(BearerAuth(None, ROOT), f"{ROOT}/models") is None


def test_other_headers_are_left_alone() -> None:
    request = httpx.Request("GET", "https://cdn.example.test/i.png", headers={"x-other": "1"})
    sent = next(BearerAuth(ApiKey(UNIT_KEY), ROOT).sync_auth_flow(request))
    assert "authorization" not in sent.headers
    assert sent.headers["x-other"] == "1"


def test_repr_hides_the_key() -> None:
    auth = BearerAuth(ApiKey(UNIT_KEY), ROOT)
    text = repr(auth)
    assert UNIT_KEY not in text
    assert UNIT_KEY[4:-4] not in text
    assert text.startswith("BearerAuth(ApiKey(rsk_…") and ROOT in text
    assert repr(BearerAuth(None, ROOT)) == f"BearerAuth(None, {ROOT!r})"


def test_key_goes_on_the_wire_only_under_the_root_through_a_client() -> None:
    seen: dict[str, str | None] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[str(request.url)] = request.headers.get("authorization")
        return httpx.Response(200)

    async def go() -> None:
        auth = BearerAuth(ApiKey(UNIT_KEY), ROOT)
        async with build_http_client("network", httpx.MockTransport(handler)) as http:
            await http.get(f"{ROOT}/models", auth=auth)
            await http.get("https://cdn.example.test/i.png", auth=auth)

    asyncio.run(go())
    assert seen == {f"{ROOT}/models": f"Bearer {UNIT_KEY}", "https://cdn.example.test/i.png": None}


# -- build_http_client -----------------------------------------------------------------------


def test_network_client_settings() -> None:
    client = build_http_client("network", httpx.MockTransport(lambda r: httpx.Response(204)))
    try:
        assert client.headers["user-agent"] == USER_AGENT
        assert client.trust_env is True
        assert client.follow_redirects is False
        assert client.timeout == httpx.Timeout(DEFAULT_TIMEOUT)
    finally:
        asyncio.run(client.aclose())


def test_network_client_sends_the_user_agent_through_the_transport() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"location": "https://elsewhere.test/"})

    async def go() -> httpx.Response:
        async with build_http_client("network", httpx.MockTransport(handler)) as http:
            return await http.get(f"{ROOT}/models")

    response = asyncio.run(go())
    assert response.status_code == 302  # redirects are never followed
    assert len(seen) == 1
    assert seen[0].headers["user-agent"] == USER_AGENT


def test_offline_client_ignores_the_environment_and_the_injected_transport() -> None:
    injected: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        injected.append(request)
        return httpx.Response(500)

    client = build_http_client("offline", httpx.MockTransport(handler))

    async def go() -> httpx.Response:
        async with client:
            return await client.get(f"{OFFLINE_ROOT}/v1/models")

    assert client.trust_env is False
    assert client.headers["user-agent"] == USER_AGENT
    response = asyncio.run(go())
    assert injected == []
    assert response.status_code == 200
    payload = response.json()
    models = payload["data"] if isinstance(payload, dict) else payload
    assert isinstance(models, list) and models
    assert all("id" in m for m in models)


def test_each_call_builds_a_new_client() -> None:
    a = build_http_client("network")
    b = build_http_client("network")
    try:
        assert a is not b
    finally:
        asyncio.run(a.aclose())
        asyncio.run(b.aclose())


@pytest.mark.parametrize("root", ["https://api.example.test:443/v1", "https://API.example.test/v1"])
def test_bearer_auth_covers_its_own_root_spelled_another_way(root: str) -> None:
    # httpx normalises a default port and the host's case: the comparison must too.
    sent = next(BearerAuth(ApiKey(UNIT_KEY), root).sync_auth_flow(httpx.Request("GET", root + "/models")))
    assert sent.headers.get("authorization") == f"Bearer {UNIT_KEY}"


def test_bearer_auth_still_refuses_another_port_or_scheme() -> None:
    auth = BearerAuth(ApiKey(UNIT_KEY), "https://api.example.test/v1")
    assert not auth.covers("https://api.example.test:8443/v1/models")
    assert not auth.covers("http://api.example.test/v1/models")

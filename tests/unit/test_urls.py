"""URLs: loopback hosts, the API root and URLs safe to write next to an image (core.urls)."""

from __future__ import annotations

import pytest

from mesh_magic.core.constants import OFFLINE, OFFLINE_ROOT
from mesh_magic.core.urls import api_root, host_of, is_loopback, netloc_of, public_url


@pytest.mark.parametrize(
    "host",
    ["localhost", "LocalHost", "127.0.0.1", "127.10.20.30", "::1", "[::1]", "::ffff:127.0.0.1"],
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host",
    [
        "",
        "example.com",
        "localhost.example.com",
        "app.localhost",  # resolves wherever the resolver says: not loopback for the key
        "a.b.localhost",
        "localhost.",
        "notlocalhost",
        "10.0.0.1",
        "192.168.1.1",
        "0.0.0.0",
        "::",
        "2001:db8::1",
        "128.0.0.1",
        "api.meshapi.ai",
    ],
)
def test_non_loopback_hosts(host: str) -> None:
    assert not is_loopback(host)


@pytest.mark.parametrize(
    ("base", "root"),
    [
        ("https://api.example.test", "https://api.example.test/v1"),
        ("https://api.example.test/", "https://api.example.test/v1"),
        ("https://api.example.test/v1", "https://api.example.test/v1"),
        ("https://api.example.test/v1/", "https://api.example.test/v1"),
        ("https://api.example.test/v1//", "https://api.example.test/v1"),
        ("https://gw.example.test/mesh", "https://gw.example.test/mesh/v1"),
        ("https://gw.example.test/mesh/v1", "https://gw.example.test/mesh/v1"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765/v1"),
    ],
)
def test_api_root_ends_in_v1_once(base: str, root: str) -> None:
    assert api_root(base) == root


def test_api_root_offline() -> None:
    assert api_root(OFFLINE) == OFFLINE_ROOT + "/v1"
    assert api_root(OFFLINE).startswith("http://") and ".invalid" in api_root(OFFLINE)


def test_api_root_keeps_a_v1_that_is_not_the_last_segment() -> None:
    # "/v1beta" is not "/v1": a /v1 is added after it.
    assert api_root("https://gw.example.test/v1beta") == "https://gw.example.test/v1beta/v1"


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("https://user:secret@cdn.example.test/img.png", "https://cdn.example.test/img.png"),
        ("https://cdn.example.test/img.png?sig=abc&exp=1", "https://cdn.example.test/img.png"),
        ("https://cdn.example.test/img.png#frag", "https://cdn.example.test/img.png"),
        ("https://u:p@cdn.example.test:8443/a/b?x=1#y", "https://cdn.example.test:8443/a/b"),
        ("http://127.0.0.1:8765/v1", "http://127.0.0.1:8765/v1"),
        ("https://CDN.Example.TEST/Path", "https://cdn.example.test/Path"),
        ("https://api.example.test", "https://api.example.test"),
    ],
)
def test_public_url_drops_userinfo_query_and_fragment(url: str, public: str) -> None:
    assert public_url(url) == public


@pytest.mark.parametrize("url", ["offline", "", "data:image/png;base64,AAAA", "ftp://u:p@h/x?y"])
def test_public_url_leaves_non_http_text_alone(url: str) -> None:
    assert public_url(url) == url


def test_public_url_never_keeps_a_password_or_token() -> None:
    out = public_url("https://alice:hunter2@cdn.example.test:9000/i.png?token=t0k3n")
    assert "hunter2" not in out and "alice" not in out and "t0k3n" not in out
    assert out == "https://cdn.example.test:9000/i.png"


def test_host_and_netloc() -> None:
    assert host_of("https://u:p@API.example.test:8443/v1") == "api.example.test"
    assert host_of("not a url") == ""
    assert netloc_of("https://api.example.test:8443/v1") == "api.example.test:8443"
    assert netloc_of("https://api.example.test/v1") == "api.example.test"


def test_public_url_keeps_ipv6_brackets() -> None:
    assert public_url("https://user:pw@[::1]:8080/v1?key=1") == "https://[::1]:8080/v1"
    assert public_url("https://[2001:db8::1]/img.png?sig=abc") == "https://[2001:db8::1]/img.png"

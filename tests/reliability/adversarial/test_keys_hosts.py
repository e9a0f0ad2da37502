"""Class 8: where the key may go. Plain http only to literal loopback; no user info; base_url whole.

* `http://` with a key is refused, before any connection, for every host that is not a
  literal loopback address or `localhost` itself (`*.localhost`, numeric tricks,
  private and link-local addresses, names that merely contain "localhost").
* A base_url with `user:pass@` is refused wherever it is set, and the message, the
  config table and the session never repeat it.
* A malformed base_url (scheme, host, port, IPv6 brackets) is an `InvalidOptionError`
  from `configure()`, the environment or the magic, never a raw ValueError, and changes
  nothing; any base_url accepted is one httpx reads the same way.
* Image URLs and redirects off the API root never get the key.
"""

from __future__ import annotations

import string
import warnings
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import given, settings, strategies as st

import mesh_magic
from mesh_magic import MeshImageError
from mesh_magic.core import config as _config
from mesh_magic.core.checks import check_base_url
from mesh_magic.core.errors import InvalidOptionError
from tests.reliability.adversarial.hostile import HostileServer, Reply, Seen
from tests.reliability.adversarial.leaks import Hunt
from tests.reliability.adversarial.tally import example
from tests.support.sentinel import SENTINEL_KEY as KEY
from tests.support.servers import NoNetwork

CLASS = "8 hosts"
pytestmark = pytest.mark.adversarial(CLASS)
GEN = "/v1/images/generations"
PASSWORD = "hunter2PASSWORDxyz"

NOT_LOOPBACK = [
    "http://app.localhost",
    "http://a.b.localhost:8000",
    "http://localhost.example.com",
    "http://localhost.",
    "http://LOCALHOST.evil.test",
    "http://mylocalhost",
    "http://127.0.0.1.nip.io",
    "http://localtest.me",
    "http://0.0.0.0:8000",
    "http://[::]:8000",
    "http://127.1",
    "http://2130706433",
    "http://0x7f000001",
    "http://017700000001",
    "http://10.0.0.1",
    "http://192.168.1.1",
    "http://169.254.169.254",
    "http://[fe80::1]",
    "http://[::ffff:10.0.0.1]",
    "http://[::2]",
    "http://example.com",
    "http://api.meshapi.ai",
]


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHAPI_API_KEY", KEY)


def _refused_before_sending(action: Any, spy: NoNetwork) -> MeshImageError:
    with pytest.raises(MeshImageError) as info:
        action()
    assert isinstance(info.value, InvalidOptionError), f"{type(info.value).__name__}: {info.value}"
    assert spy.attempts == [], f"a connection was tried: {spy.attempts}"
    return info.value


@pytest.mark.usefixtures("keyed")
@pytest.mark.parametrize("base", NOT_LOOPBACK)
def test_plain_http_with_a_key_is_refused_unless_loopback(base: str, no_network: NoNetwork) -> None:
    err = _refused_before_sending(
        lambda: mesh_magic.generate("a cat", model="google/imagen-4", base_url=base), no_network
    )
    assert KEY not in str(err)


@pytest.mark.usefixtures("keyed")
@pytest.mark.parametrize("base", NOT_LOOPBACK[:8])
@pytest.mark.parametrize("door", ["configure", "env", "magic"])
def test_plain_http_is_refused_whichever_way_the_url_is_set(
    door: str, base: str, no_network: NoNetwork, monkeypatch: pytest.MonkeyPatch, shell: Any
) -> None:
    if door == "configure":
        mesh_magic.configure(base_url=base)
        action: Any = lambda: mesh_magic.generate("a cat", model="google/imagen-4")  # noqa: E731
    elif door == "env":
        monkeypatch.setenv("MESHAPI_BASE_URL", base)
        action = lambda: mesh_magic.generate("a cat", model="google/imagen-4")  # noqa: E731
    else:
        shell.run_line_magic("meshimg_config", f"base_url={base}")
        action = lambda: shell.run_cell("%%meshimg -m google/imagen-4\na cat")  # noqa: E731
    _refused_before_sending(action, no_network)


@pytest.mark.usefixtures("keyed")
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_plain_http_to_loopback_works(host: str, hostile: HostileServer) -> None:
    mesh_magic.configure(base_url=f"http://{host}:{hostile.port}", max_retries=0)
    assert len(mesh_magic.generate("a cat", model="google/imagen-4")) == 1
    assert hostile.sent_keys()[-1] == f"Bearer {KEY}"


@pytest.mark.usefixtures("keyed")
@pytest.mark.parametrize("host", ["127.0.0.2", "127.255.255.254", "[::1]", "[::ffff:127.0.0.1]"])
def test_other_loopback_literals_are_allowed(host: str) -> None:
    """Allowed over plain http (nothing listens there, so the call fails to connect instead)."""
    mesh_magic.configure(base_url=f"http://{host}:1", max_retries=0)
    with pytest.raises(MeshImageError) as info:
        mesh_magic.generate("a cat", model="google/imagen-4")
    assert type(info.value).__name__ == "APIConnectionError", str(info.value)


# -- user info ---------------------------------------------------------------------------

USERINFO = [
    f"https://user:{PASSWORD}@api.example.test",
    f"https://:{PASSWORD}@api.example.test",
    f"https://{PASSWORD}@api.example.test",
    f"http://u:{PASSWORD}@127.0.0.1:1",
    f"https://u%40x:{PASSWORD}%3A@api.example.test",
    f"https://user:{PASSWORD}@[::1]:8080",
    f"https://user:{PASSWORD}@@api.example.test",
    f"https://user:{PASSWORD}@api.example.test/v1",
    f"ftp://user:{PASSWORD}@api.example.test",
    f"user:{PASSWORD}@api.example.test",
]


def _userinfo_refused(err: BaseException) -> None:
    hunt = Hunt(key=PASSWORD)
    hunt.scan(str(err), "message")
    hunt.scan(repr(err.args), "args")
    hunt.check()
    assert "user name or password" in str(err)


@pytest.mark.parametrize("base", USERINFO)
@pytest.mark.parametrize("door", ["configure", "call", "env", "magic"])
def test_user_info_in_base_url_is_refused_without_repeating_it(
    door: str, base: str, no_network: NoNetwork, monkeypatch: pytest.MonkeyPatch, shell: Any, capsys: Any
) -> None:
    monkeypatch.setenv("MESHAPI_API_KEY", KEY)
    before = _config.session().session_values()
    error: BaseException
    with pytest.raises(Exception) as info:  # noqa: PT011 - the type is checked below, per door
        if door == "configure":
            mesh_magic.configure(base_url=base)
        elif door == "call":
            mesh_magic.generate("a cat", model="google/imagen-4", base_url=base)
        elif door == "env":
            monkeypatch.setenv("MESHAPI_BASE_URL", base)
            mesh_magic.generate("a cat", model="google/imagen-4")
        else:
            shell.run_line_magic("meshimg_config", f"base_url={base}")
    error = info.value
    expected = "UsageError" if door == "magic" else "InvalidOptionError"
    assert type(error).__name__ == expected, f"{type(error).__name__}: {error}"
    _userinfo_refused(error)
    assert no_network.attempts == []
    assert _config.session().session_values() == before
    monkeypatch.delenv("MESHAPI_BASE_URL", raising=False)
    table = shell.run_line_magic("meshimg_config", "")
    hunt = Hunt(key=PASSWORD)
    hunt.scan(repr(table) + str(table._repr_html_() if hasattr(table, "_repr_html_") else ""), "config table")
    captured = capsys.readouterr()
    hunt.scan(captured.out + captured.err, "stdout/stderr")
    hunt.check()


# -- malformed base URLs -----------------------------------------------------------------

MALFORMED = [
    "http://[::1",
    "http://[::1]]",
    "http://h:65536",
    "http://h:0",
    "http://[::1]:99999",
    "http://h:-1",
    "http://h:abc",
    "http://h:\u0663",
    "http://::1:80",
    "http://[::1]x:80",
    "http://[1.2.3.4]",
    "http://[fe80::1%25eth0]",
    "https://xn--.com",
    "https://a..b",
    "https://-a.com",
    "https://a_b.com",
    "ftp://h",
    "h",
    "",
    "https://",
    "https:///v1",
    "http://h?x=1",
    "http://h#f",
    "http://h\\@evil",
    "http://ex ample.com",
    "http://h\n.com",
    "http://h\x00",
]


@pytest.mark.parametrize("base", MALFORMED)
def test_a_malformed_base_url_is_an_option_error_and_changes_nothing(base: str) -> None:
    mesh_magic.configure(base_url="https://api.example.test")
    with pytest.raises(InvalidOptionError):
        mesh_magic.configure(base_url=base)
    assert _config.session().base_url == "https://api.example.test"


@pytest.mark.usefixtures("keyed")
@pytest.mark.parametrize("base", MALFORMED[:12])
def test_a_malformed_base_url_in_the_environment_fails_before_sending(
    base: str, no_network: NoNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHAPI_BASE_URL", base)
    _refused_before_sending(lambda: mesh_magic.generate("a cat", model="google/imagen-4"), no_network)


@pytest.mark.parametrize("base", MALFORMED[:8])
def test_a_malformed_base_url_in_the_magic_is_a_usage_error(base: str, shell: Any) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError):
        shell.run_line_magic("meshimg_config", f"base_url={base}")


URL_CHARS = string.ascii_letters + string.digits + ":/@[]%.-_?#\\ " + "\u0663\u00e9"


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(["http://", "https://", "HTTPS://", "ftp://", ""]),
    rest=st.text(st.sampled_from(list(URL_CHARS)), max_size=30),
)
def test_any_accepted_base_url_is_one_httpx_reads_the_same(scheme: str, rest: str) -> None:
    example(CLASS)
    try:
        base = check_base_url(scheme + rest)
    except InvalidOptionError:
        return
    if base == "offline":
        return
    url = httpx.URL(base)
    parts = urlsplit(base)
    assert url.scheme in ("http", "https")
    assert url.host and url.host == parts.hostname
    assert url.port is None or 0 < url.port < 65536
    assert "@" not in parts.netloc and not parts.query and not parts.fragment


# -- image URLs and redirects off the API root ------------------------------------------


def _image_at(url_of: Any) -> Any:
    def script(seen: Seen) -> Reply | None:
        if seen.path.startswith(GEN):
            return Reply(200, {"created": 1, "data": [{"url": url_of(seen)}]})
        return None

    return script


OFF_ROOT = {
    "localhost name": lambda s: f"http://localhost:{s.headers['Host'].split(':')[1]}/img",
    "path outside the root": lambda s: f"http://{s.headers['Host']}/img",
    "root-like prefix": lambda s: f"http://{s.headers['Host']}/v1x/img",
    "dot segments": lambda s: f"http://{s.headers['Host']}/v1/../img",
    "encoded dot segments": lambda s: f"http://{s.headers['Host']}/v1/%2e%2e/img",
}


@pytest.mark.usefixtures("keyed")
@pytest.mark.parametrize("case", sorted(OFF_ROOT))
def test_image_urls_off_the_api_root_get_no_key(case: str, hostile: HostileServer) -> None:
    mesh_magic.configure(base_url=hostile.base_url, max_retries=0)
    hostile.script = _image_at(OFF_ROOT[case])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mesh_magic.generate("a cat", model="google/imagen-4")
    downloads = [r for r in hostile.requests if not r.path.startswith(("/v1/images", "/v1/models"))]
    assert downloads, "the image URL was fetched"
    assert all("Authorization" not in r.headers for r in downloads), [r.path for r in downloads]


@pytest.mark.usefixtures("keyed")
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_from_the_api_is_not_followed(status: int, hostile: HostileServer) -> None:
    mesh_magic.configure(base_url=hostile.base_url, max_retries=0)
    target = f"http://localhost:{hostile.port}/elsewhere"
    hostile.script = lambda s: Reply(status, b"", [("Location", target)]) if s.path.startswith(GEN) else None
    with pytest.raises(MeshImageError, match="redirected"):
        mesh_magic.generate("a cat", model="google/imagen-4")
    assert not any(r.path == "/elsewhere" for r in hostile.requests)

"""ws_connect's URL parsing (``picows.api._parse_url``): scheme and TLS,
default ports, IPv6 literals and the Host header (RFC 6455 3 and 4.1, RFC
3986 3.2.2, RFC 9110 7.2), the request target with its query, and the URLs
it refuses."""
from __future__ import annotations

import pytest

from picows.api import _parse_url


@pytest.mark.parametrize("url, expected", [
    # (secure, host, port, Host header, request target)
    ("ws://example.com", (False, "example.com", 80, "example.com", "/")),
    ("wss://example.com", (True, "example.com", 443, "example.com", "/")),
    ("ws://example.com/", (False, "example.com", 80, "example.com", "/")),
    ("ws://example.com:80/a", (False, "example.com", 80, "example.com", "/a")),
    ("wss://example.com:443/a", (True, "example.com", 443, "example.com", "/a")),
    ("ws://example.com:443/", (False, "example.com", 443, "example.com:443", "/")),
    ("wss://example.com:80/", (True, "example.com", 80, "example.com:80", "/")),
    ("ws://example.com:8080/chat", (False, "example.com", 8080, "example.com:8080", "/chat")),
    ("ws://127.0.0.1:9001", (False, "127.0.0.1", 9001, "127.0.0.1:9001", "/")),
    ("ws://localhost:1/", (False, "localhost", 1, "localhost:1", "/")),
    ("ws://example.com:65535/", (False, "example.com", 65535, "example.com:65535", "/")),
], ids=lambda v: v if isinstance(v, str) else None)
def test_scheme_host_port(url, expected):
    assert tuple(_parse_url(url))[:5] == expected


@pytest.mark.parametrize("url, host, port, host_header", [
    ("ws://[::1]/", "::1", 80, "[::1]"),
    ("ws://[::1]:8080/", "::1", 8080, "[::1]:8080"),
    ("wss://[2001:db8::7]/", "2001:db8::7", 443, "[2001:db8::7]"),
    ("wss://[2001:db8::7]:8443/x", "2001:db8::7", 8443, "[2001:db8::7]:8443"),
    ("ws://[::ffff:127.0.0.1]:1/", "::ffff:127.0.0.1", 1, "[::ffff:127.0.0.1]:1"),
])
def test_ipv6_host_and_host_header(url, host, port, host_header):
    """The host to connect to is the bare address; the Host header keeps the
    brackets (an IPv6 literal in a URI authority, RFC 3986 3.2.2)."""
    _, got_host, got_port, got_header, _, _ = _parse_url(url)
    assert (got_host, got_port, got_header) == (host, port, host_header)


def test_host_is_lower_case():
    # urllib lower-cases the host name; DNS and the Host header do not care.
    assert _parse_url("ws://Example.COM/Path")[1:4] == ("example.com", 80, "example.com")


@pytest.mark.parametrize("url, target", [
    ("ws://h/chat?room=1", "/chat?room=1"),
    ("ws://h?x=1", "/?x=1"),
    ("ws://h/?a=1&b=2", "/?a=1&b=2"),
    ("ws://h/a/b/c", "/a/b/c"),
    ("ws://h/a%20b?q=%2F", "/a%20b?q=%2F"),  # percent-encoding is kept as it is
    ("ws://h/p#fragment", "/p"),               # never sent (RFC 6455 3)
    ("ws://h/p?q=1#fragment", "/p?q=1"),
    ("ws://h/p?", "/p"),                       # an empty query is dropped
])
def test_request_target(url, target):
    assert _parse_url(url)[4] == target


@pytest.mark.parametrize("url, message", [
    ("http://example.com/", "the scheme must be ws or wss"),
    ("https://example.com/", "the scheme must be ws or wss"),
    ("example.com/ws", "the scheme must be ws or wss"),
    ("", "the scheme must be ws or wss"),
    ("ws:///path", "no host"),
    ("ws://:8080/", "no host"),
    ("ws://example.com:99999/", "out of range"),
    ("ws://example.com:-1/", "invalid websocket URL"),
    ("ws://example.com:http/", "invalid websocket URL"),
    ("ws://[::1/", "invalid websocket URL"),
    ("ws://example.com/a b", "whitespace in the path"),
    ("ws://example.com/?q=a\r\nX-Injected: 1", "whitespace in the path"),
])
def test_bad_urls(url, message):
    with pytest.raises(ValueError, match="invalid websocket URL") as info:
        _parse_url(url)
    assert message in str(info.value)


@pytest.mark.parametrize("url", [b"ws://example.com/", None, 42])
def test_url_must_be_a_str(url):
    with pytest.raises(ValueError, match="url must be a str"):
        _parse_url(url)


def test_no_line_break_reaches_the_request_target():
    """CR, LF and TAB never reach the request line (urllib drops them, and
    anything else that splits the line is refused): no header injection."""
    target = _parse_url("ws://h/a\r\nb\tc")[4]
    assert not set("\r\n\t ") & set(target)


@pytest.mark.parametrize("url, authorization", [
    ("ws://user:secret@example.com/", "Basic dXNlcjpzZWNyZXQ="),
    ("ws://user@example.com/", "Basic dXNlcjo="),
    ("ws://us%40er:p%3Ass@example.com/", "Basic dXNAZXI6cDpzcw=="),
    ("ws://example.com/", None),
])
def test_credentials_become_basic_authorization(url, authorization):
    """As websockets and aiohttp do: user:password@ is sent as
    Authorization: Basic (percent-decoded), and is not part of the Host."""
    target = _parse_url(url)
    assert target.authorization == authorization
    assert target.host_header == "example.com"

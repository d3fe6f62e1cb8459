"""picows.proxy without sockets: proxy URL parsing, the environment lookup
(urllib.request's rules), the CONNECT request and the response's status line."""
from __future__ import annotations

import base64

import pytest

from picows.proxy import (
    MAX_RESPONSE_HEAD,
    ProxyURL,
    connect_request,
    parse_connect_response,
    parse_proxy_url,
    proxy_from_env,
)
from picows.types import WSError, WSProxyError

ENV_NAMES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ws_proxy", "wss_proxy",
             "REQUEST_METHOD")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


# --------------------------------------------------------------------------
# parse_proxy_url


@pytest.mark.parametrize("url, expected", [
    ("http://proxy", ProxyURL("http", "proxy", 80, None, None)),
    ("https://proxy", ProxyURL("https", "proxy", 443, None, None)),
    ("socks4://proxy", ProxyURL("socks4", "proxy", 1080, None, None)),
    ("socks4a://proxy", ProxyURL("socks4a", "proxy", 1080, None, None)),
    ("socks5://proxy", ProxyURL("socks5", "proxy", 1080, None, None)),
    ("socks5h://proxy:9050", ProxyURL("socks5h", "proxy", 9050, None, None)),
    ("HTTP://Proxy:3128/", ProxyURL("http", "proxy", 3128, None, None)),
    ("http://u:p@10.0.0.1:3128", ProxyURL("http", "10.0.0.1", 3128, "u", "p")),
    ("http://u@proxy:3128", ProxyURL("http", "proxy", 3128, "u", None)),
    ("http://u%40x:p%3Aw%2F@proxy", ProxyURL("http", "proxy", 80, "u@x", "p:w/")),
    ("http://[::1]:3128", ProxyURL("http", "::1", 3128, None, None)),
])
def test_parse(url, expected):
    assert parse_proxy_url(url) == expected


@pytest.mark.parametrize("url, message", [
    ("ftp://u:secret@proxy", "the scheme must be one of"),
    ("proxy:3128", "the scheme must be one of"),
    ("http://u:secret@", "no host"),
    ("http://u:secret@proxy/path", "no path or query"),
    ("http://u:secret@proxy?x=1", "no path or query"),
    ("http://u:secret@proxy:99999", "invalid proxy URL"),
    ("http://u:secret@proxy:port", "invalid proxy URL"),
])
def test_parse_rejects_without_showing_credentials(url, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_proxy_url(url)
    assert "secret" not in str(info.value)


def test_parse_type():
    with pytest.raises(TypeError, match="proxy must be a str URL, True or None"):
        parse_proxy_url(1080)  # type: ignore[arg-type]


def test_repr_and_display_hide_credentials():
    proxy = parse_proxy_url("socks5://alice:hunter2@[::1]:1080")
    assert proxy.display == "socks5://[::1]:1080"
    assert repr(proxy) == "ProxyURL(socks5://[::1]:1080, with credentials)"
    assert "hunter2" not in repr(proxy) and "alice" not in repr(proxy)
    assert proxy.scrub("auth hunter2 of alice failed") == "auth *** of *** failed"
    encoded = parse_proxy_url("http://a:p%2Fw@proxy")
    assert encoded.scrub("x p/w p%2Fw") == "x *** ***"


# --------------------------------------------------------------------------
# proxy_from_env


@pytest.mark.parametrize("env, secure, expected", [
    ({}, False, None),
    ({}, True, None),
    ({"HTTP_PROXY": "http://h:1"}, False, "http://h:1"),
    ({"HTTP_PROXY": "http://h:1"}, True, None),
    ({"HTTPS_PROXY": "http://s:1"}, True, "http://s:1"),
    ({"HTTPS_PROXY": "http://s:1"}, False, None),
    ({"HTTP_PROXY": "http://h:1", "HTTPS_PROXY": "http://s:1"}, True, "http://s:1"),
    ({"ALL_PROXY": "socks5://a:1"}, False, "socks5://a:1"),
    ({"ALL_PROXY": "socks5://a:1"}, True, "socks5://a:1"),
    ({"ALL_PROXY": "socks5://a:1", "HTTP_PROXY": "http://h:1"}, False, "http://h:1"),
    ({"WSS_PROXY": "http://w:1", "HTTPS_PROXY": "http://s:1"}, True, "http://w:1"),
    # urllib prefers the lowercase name.
    ({"http_proxy": "http://lower:1", "HTTP_PROXY": "http://upper:1"}, False, "http://lower:1"),
    # "host:port" as urllib accepts it: HTTP.
    ({"HTTP_PROXY": "h:3128"}, False, "http://h:3128"),
])
def test_env_lookup(monkeypatch, env, secure, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert proxy_from_env(secure, "example.com", 443 if secure else 80) == expected


@pytest.mark.parametrize("no_proxy, host, port, bypassed", [
    ("example.com", "example.com", 80, True),
    ("example.com", "sub.example.com", 80, True),
    (".example.com", "sub.example.com", 80, True),
    ("example.com", "example.org", 80, False),
    ("*", "anything", 80, True),
    ("127.0.0.1", "127.0.0.1", 9000, True),
    ("example.com:8080", "example.com", 8080, True),
    ("example.com:8080", "example.com", 80, False),
    ("a.com, b.com", "b.com", 80, True),
    ("", "example.com", 80, False),
])
def test_no_proxy(monkeypatch, no_proxy, host, port, bypassed):
    monkeypatch.setenv("HTTP_PROXY", "http://h:1")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert proxy_from_env(False, host, port) == (None if bypassed else "http://h:1")


def test_no_proxy_ipv6_literal(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://h:1")
    monkeypatch.setenv("NO_PROXY", "::1")
    assert proxy_from_env(True, "::1", 443) is None
    assert proxy_from_env(True, "::2", 443) == "http://h:1"


# --------------------------------------------------------------------------
# CONNECT request and response


def test_connect_request_without_credentials():
    assert connect_request(parse_proxy_url("http://p:3128"), "example.com", 443) == (
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")


def test_connect_request_ipv6_and_basic_auth():
    request = connect_request(parse_proxy_url("http://us%3Aer:p%C3%A4ss@p"), "::1", 8080)
    lines = request.split(b"\r\n")
    assert lines[0] == b"CONNECT [::1]:8080 HTTP/1.1"
    assert lines[1] == b"Host: [::1]:8080"
    scheme, _, token = lines[2].partition(b" ")[2].partition(b" ")
    assert lines[2].startswith(b"Proxy-Authorization: ") and scheme == b"Basic"
    assert base64.b64decode(token).decode("utf-8") == "us:er:päss"
    assert request.endswith(b"\r\n\r\n")


@pytest.mark.parametrize("head, expected", [
    (b"HTTP/1.1 200 Connection established", (200, "Connection established")),
    (b"HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1",
     (200, "Connection established")),
    (b"HTTP/1.1 200", (200, "")),
    (b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic",
     (407, "Proxy Authentication Required")),
    (b"HTTP/1.1 502 Bad\x01Gateway", (502, "Bad?Gateway")),
])
def test_parse_connect_response(head, expected):
    assert parse_connect_response(head) == expected


@pytest.mark.parametrize("head", [
    b"", b"SSH-2.0-OpenSSH", b"HTTP/2 200 OK", b"HTTP/1.1 20 OK", b"HTTP/1.1 abc OK",
    b"HTTP/1.1  200 OK", b"\x05\x00",
])
def test_parse_connect_response_rejects(head):
    with pytest.raises(ValueError, match="not an HTTP/1.x status line"):
        parse_connect_response(head)


def test_reason_is_bounded():
    assert len(parse_connect_response(b"HTTP/1.1 500 " + b"x" * 10_000)[1]) == 200
    assert MAX_RESPONSE_HEAD == 64 * 1024


def test_wsproxyerror():
    exc = WSProxyError("m", hop="target", proxy="http://p:1", status=502, reason="Bad Gateway")
    assert isinstance(exc, WSError)
    assert (str(exc), exc.hop, exc.proxy, exc.status, exc.reason) == (
        "m", "target", "http://p:1", 502, "Bad Gateway")

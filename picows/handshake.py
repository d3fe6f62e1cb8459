"""The HTTP/1.1 upgrade handshake of RFC 6455 section 4, both sides.

Plain Python: it runs once per connection, so clarity beats speed here. The
protocol in ``picows.pyx`` collects the head (everything up to and including
the blank line), enforces the size limit while it does, and hands the head to
these functions.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from http import HTTPStatus
from typing import Any, Iterable, List, Mapping, Optional, Tuple

from multidict import CIMultiDict

# The permessage-deflate negotiation lives in compression.py; its names stay
# importable from here.
from .compression import DEFLATE_OFFER, DeflateParams, negotiate_deflate, parse_deflate_response
from .types import (HeadersLike, WSHandshakeError, WSInvalidHeaderError,
                    WSInvalidMessageError, WSInvalidStatusError, WSInvalidUpgradeError,
                    WSUpgradeRequest, WSUpgradeResponse)

__all__ = [
    "MAX_HEAD_SIZE",
    "MAX_HEADERS",
    "accept_key",
    "new_client_key",
    "parse_http_request",
    "validate_upgrade_request",
    "is_upgrade_request",
    "parse_upgrade_request",
    "build_upgrade_response",
    "build_response",
    "build_error_response",
    "build_upgrade_request",
    "parse_response_head",
    "parse_upgrade_response",
    "offered_subprotocols",
    "joined_header",
    "DeflateParams",
    "negotiate_deflate",
    "DEFLATE_OFFER",
    "parse_deflate_response",
]

#: The largest upgrade request or response head accepted, in bytes.
MAX_HEAD_SIZE = 16 * 1024
#: The most header lines accepted in an upgrade request or response.
MAX_HEADERS = 128

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# RFC 7230 token characters, for header names and methods.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_STATUS_LINE = re.compile(rb"(HTTP/\d\.\d) (\d{3})(?: (.*))?\Z")
# The headers picows writes itself in a 101: a user's copy is dropped.
_OWN_101_HEADERS = frozenset(("upgrade", "connection", "sec-websocket-accept",
                              "sec-websocket-extensions"))

ExtraHeaders = HeadersLike


def accept_key(key: str) -> str:
    """Return the Sec-WebSocket-Accept value for a Sec-WebSocket-Key."""
    digest = hashlib.sha1(key.encode("ascii") + _GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def new_client_key() -> str:
    """Return a fresh random Sec-WebSocket-Key (16 random bytes, base64)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def _tokens(value: str) -> List[str]:
    return [t.strip().lower() for t in value.split(",") if t.strip()]


def _all_tokens(headers: "CIMultiDict[str]", name: str) -> List[str]:
    """The comma-separated tokens of every `name` header (RFC 7230 3.2.2)."""
    return [t for value in headers.getall(name, ()) for t in _tokens(value)]


def joined_header(headers: "CIMultiDict[str]", name: str) -> Optional[str]:
    """Every `name` header's value joined with ", " (RFC 7230 3.2.2), or None."""
    values = headers.getall(name, None)
    return None if values is None else ", ".join(values)


def _parse_head(raw: bytes, error: Any = None) -> Tuple[bytes, "CIMultiDict[str]"]:
    """Split a head into its start line and its headers (names lowercased).

    Raises `error(description)` on syntax errors (default: a 400
    WSHandshakeError, for the server side).
    """
    def fail(text: str) -> Exception:
        return error(text) if error is not None else WSHandshakeError(400, text)

    if not raw.endswith(b"\r\n\r\n"):
        raise fail("incomplete HTTP head")
    lines = raw[:-4].split(b"\r\n")
    start = lines[0]
    if len(lines) - 1 > MAX_HEADERS:
        if error is not None:
            raise fail(f"more than {MAX_HEADERS} header lines")
        raise WSHandshakeError(431, f"more than {MAX_HEADERS} header lines")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        # RFC 7230 3.2.4: no whitespace before the colon, no obsolete folding.
        if not sep or not _TOKEN.match(name):
            raise fail("malformed header line")
        if b"\r" in value or b"\n" in value or b"\0" in value:
            raise fail("invalid character in header value")
        headers.add(name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1"))
    return start, headers


def parse_http_request(raw: bytes) -> WSUpgradeRequest:
    """Parse any request head the server gets: the checks every request
    must pass before the listener factory sees it (RFC 7230, RFC 6455 4.1:
    an HTTP/1.1 GET without a body).

    :raises WSHandshakeError: 400 malformed, HTTP/1.0, a body or no Host;
        405 (with ``Allow: GET``) another method; 431 too many headers.
    """
    start, headers = _parse_head(raw)
    parts = start.split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1]:
        raise WSHandshakeError(400, "malformed request line")
    method, path, version = parts
    if not version.startswith(b"HTTP/"):
        raise WSHandshakeError(400, "malformed request line")
    if version != b"HTTP/1.1":
        raise WSHandshakeError(400, "the request must be HTTP/1.1")
    if method != b"GET":
        raise WSHandshakeError(405, "the method must be GET",
                               [("Allow", "GET")])
    if "transfer-encoding" in headers or headers.get("content-length", "0").strip() != "0":
        raise WSHandshakeError(400, "a GET request must not have a body")
    if len(headers.getall("host", ())) != 1 or not headers["host"]:
        raise WSHandshakeError(400, "missing or repeated Host header")
    return WSUpgradeRequest(method, path, version, headers)


def is_upgrade_request(request: WSUpgradeRequest) -> bool:
    """Whether the request asks for a WebSocket (``Upgrade: websocket``)."""
    return "websocket" in _all_tokens(request.headers, "upgrade")


def validate_upgrade_request(request: WSUpgradeRequest,
                             allowed_origins: Optional[Iterable[str]] = None) -> None:
    """The WebSocket checks of RFC 6455 4.2.1 on a parsed request.

    :raises WSHandshakeError: 400 (426 with ``Sec-WebSocket-Version: 13``
        for another version, 403 for an Origin not in `allowed_origins`).
    """
    headers = request.headers
    if not is_upgrade_request(request):
        raise WSHandshakeError(400, "missing or invalid Upgrade: websocket header")
    if "upgrade" not in _all_tokens(headers, "connection"):
        raise WSHandshakeError(400, "missing or invalid Connection: Upgrade header")
    version_value = joined_header(headers, "sec-websocket-version")
    if version_value is None:
        raise WSHandshakeError(400, "missing Sec-WebSocket-Version header")
    if version_value.strip() != "13":
        raise WSHandshakeError(426, "unsupported Sec-WebSocket-Version",
                               [("Sec-WebSocket-Version", "13")])
    keys = headers.getall("sec-websocket-key", [""])
    try:
        decoded = base64.b64decode(keys[0].encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        decoded = b""
    if len(keys) != 1 or len(decoded) != 16:
        raise WSHandshakeError(400, "Sec-WebSocket-Key must be base64 of 16 bytes")
    if allowed_origins is not None:
        # Two Origin headers are joined, so they never match (RFC 6454 7.3).
        origin = joined_header(headers, "origin")
        if origin is None or origin not in set(allowed_origins):
            raise WSHandshakeError(403, "Origin not allowed")


def parse_upgrade_request(raw: bytes,
                          allowed_origins: Optional[Iterable[str]] = None) -> WSUpgradeRequest:
    """Parse and validate a client's upgrade request head: both
    :func:`parse_http_request` and :func:`validate_upgrade_request`.

    :param raw: the whole head, ending with the blank line ``\\r\\n\\r\\n``.
    :param allowed_origins: when given, the exact Origin values accepted.
    :return: the request, with lowercase header names.
    :raises WSHandshakeError: with the HTTP status to answer: 400 malformed,
        405 not GET, 426 wrong Sec-WebSocket-Version, 431 too many headers,
        403 Origin not allowed.
    """
    request = parse_http_request(raw)
    validate_upgrade_request(request, allowed_origins)
    return request


def offered_subprotocols(headers: "CIMultiDict[str]") -> List[str]:
    """The subprotocols offered in Sec-WebSocket-Protocol, in order."""
    return [t.strip() for value in headers.getall("sec-websocket-protocol", ())
            for t in value.split(",") if t.strip()]


def _format_headers(extra: ExtraHeaders) -> bytes:
    if not extra:
        return b""
    items: Iterable[Tuple[str, Any]] = extra.items() if isinstance(extra, Mapping) else extra
    out = []
    for name, value in items:
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not _TOKEN.match(str(name).encode("latin-1")):
            raise ValueError(f"invalid header name {name!r}")
        line = f"{name}: {value}"
        if "\r" in line or "\n" in line or "\0" in line:
            raise ValueError(f"invalid header {name!r}")
        out.append(line.encode("latin-1") + b"\r\n")
    return b"".join(out)


def build_upgrade_response(request: WSUpgradeRequest,
                           extra_headers: ExtraHeaders = None) -> bytes:
    """Return the ``101 Switching Protocols`` response to a valid request."""
    accept = accept_key(request.headers["sec-websocket-key"])
    return (b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept.encode("ascii") + b"\r\n"
            + _format_headers(extra_headers) + b"\r\n")


def complete_101(request: WSUpgradeRequest, response: WSUpgradeResponse,
                 extensions: Optional[str]) -> WSUpgradeResponse:
    """Fill a user's 101 with the headers picows owns (in place).

    :raises ValueError: when it names a subprotocol the client did not offer
        (RFC 6455 4.2.2: the server picks one of the client's, or none).
    """
    headers = response.headers
    for name in _OWN_101_HEADERS:
        headers.popall(name, None)
    chosen = headers.getall("sec-websocket-protocol", [])
    if chosen:
        offered = offered_subprotocols(request.headers)
        if len(chosen) != 1 or chosen[0].strip() not in offered:
            raise ValueError(f"the 101 names subprotocol {', '.join(chosen)!r}; "
                             f"the client offered {offered!r}")
    own: CIMultiDict[str] = CIMultiDict()
    own["upgrade"] = "websocket"
    own["connection"] = "Upgrade"
    own["sec-websocket-accept"] = accept_key(request.headers["sec-websocket-key"])
    if extensions:
        own["sec-websocket-extensions"] = extensions
    own.extend(headers)
    response.headers = own
    return response


def _header_name(name: str) -> str:
    # How names go on the wire: Title-Case, and the WebSocket ones as RFC 6455
    # spells them (some peers compare case-sensitively, wrongly).
    if name.startswith("sec-websocket-"):
        return "Sec-WebSocket-" + "-".join(p.capitalize() for p in name[14:].split("-"))
    if name == "www-authenticate":
        return "WWW-Authenticate"
    return "-".join(p.capitalize() for p in name.split("-"))


def build_response(response: WSUpgradeResponse) -> bytes:
    """Serialize a response. A non-101 gets ``Content-Length`` and
    ``Connection: close``: the connection closes after it."""
    status = int(response.status)
    reason = response.reason or b"Unknown"
    headers: CIMultiDict[str] = CIMultiDict(response.headers)
    body = response.body or b""
    if status != 101:
        headers["connection"] = "close"
        headers.popall("transfer-encoding", None)
        headers["content-length"] = str(len(body))
        if body and "content-type" not in headers:
            headers["content-type"] = "text/plain; charset=utf-8"
    else:
        body = b""
    head = b"HTTP/1.1 %d %s\r\n" % (status, reason)
    return head + _format_headers([(_header_name(k), v) for k, v in headers.items()]) \
        + b"\r\n" + body


def build_error_response(status: int, reason: str,
                         headers: ExtraHeaders = ()) -> bytes:
    """Return a complete HTTP error response with a short plain-text body."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = f"{status} {phrase}: {reason}\n".encode("utf-8", "replace")
    return (f"HTTP/1.1 {status} {phrase}\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Connection: close\r\n").encode("latin-1") + _format_headers(headers) + b"\r\n" + body


def build_upgrade_request(host_header: str, path: str, key: str,
                          extra_headers: ExtraHeaders = None) -> bytes:
    """Return the client's upgrade request head.

    A ``Host`` in `extra_headers` (any case) replaces the generated one: the
    request has one Host line, never two (RFC 7230 5.4).
    """
    extra = list(extra_headers.items() if isinstance(extra_headers, Mapping)
                 else extra_headers or ())
    hosts = [value for name, value in extra if str(name).lower() == "host"]
    if hosts:
        host_header = str(hosts[-1])
        extra = [(name, value) for name, value in extra if str(name).lower() != "host"]
    return (f"GET {path} HTTP/1.1\r\n"
            f"Host: {host_header}\r\n"
            f"Upgrade: websocket\r\n"
            f"Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n").encode("latin-1") \
        + _format_headers(extra) + b"\r\n"


def parse_response_head(raw: bytes) -> WSUpgradeResponse:
    """Parse a response head (any status) into a :any:`WSUpgradeResponse`.

    :raises WSInvalidMessageError: when it is not well-formed HTTP.
    """
    def error(text: str) -> WSInvalidMessageError:
        return WSInvalidMessageError(0, text, raw_header=raw)

    start, headers = _parse_head(raw, error)
    m = _STATUS_LINE.match(start)
    if m is None:
        raise error(f"malformed status line {start[:100]!r}")
    return WSUpgradeResponse(m.group(1), int(m.group(2)), m.group(3) or b"", headers)


def parse_upgrade_response(raw: bytes, key: str, deflate_offered: bool = False,
                           subprotocols: Optional[Iterable[str]] = None,
                           raw_body: Optional[bytes] = None) -> WSUpgradeResponse:
    """Parse and validate the server's answer to our upgrade request.

    :param subprotocols: the subprotocols we offered; the 101 may name one
        of them, or none (RFC 6455 4.1).
    :raises WSInvalidStatusError: for a status other than 101 (with the
        response, its head and `raw_body`).
    :raises WSInvalidMessageError: for a malformed response.
    :raises WSInvalidUpgradeError: for a 101 without Upgrade/Connection.
    :raises WSInvalidHeaderError: for a wrong Sec-WebSocket-Accept, an
        extension or a subprotocol that was not offered.
    """
    response = parse_response_head(raw)
    response.body = raw_body
    if response.status != 101:
        reason_text = response.reason.decode("latin-1")
        raise WSInvalidStatusError(
            f"{reason_text or 'error'}: the server did not switch protocols",
            raw, raw_body, response)
    headers = response.headers
    if "websocket" not in _all_tokens(headers, "upgrade"):
        raise WSInvalidUpgradeError("Upgrade", joined_header(headers, "upgrade"),
                                    "response has no Upgrade: websocket header",
                                    raw_header=raw, response=response)
    if "upgrade" not in _all_tokens(headers, "connection"):
        raise WSInvalidUpgradeError("Connection", joined_header(headers, "connection"),
                                    "response has no Connection: Upgrade header",
                                    raw_header=raw, response=response)
    accept = joined_header(headers, "sec-websocket-accept")
    if accept is None or accept.strip() != accept_key(key):
        raise WSInvalidHeaderError("Sec-WebSocket-Accept", accept,
                                   "wrong Sec-WebSocket-Accept in response",
                                   raw_header=raw, response=response)
    extensions = joined_header(headers, "sec-websocket-extensions")
    if extensions and not deflate_offered:
        raise WSInvalidHeaderError("Sec-WebSocket-Extensions", extensions,
                                   "server chose an extension that was not offered",
                                   raw_header=raw, response=response)
    chosen = headers.getall("sec-websocket-protocol", [])
    if chosen:
        offered = list(subprotocols or ())
        if len(chosen) != 1 or chosen[0].strip() not in offered:
            what = (f"the client offered {offered!r}" if offered
                    else "the client offered none")
            raise WSInvalidHeaderError(
                "Sec-WebSocket-Protocol", ", ".join(chosen),
                f"server chose subprotocol {', '.join(chosen)!r}; {what} (RFC 6455 4.1)",
                raw_header=raw, response=response)
    return response


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
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from .types import WSHandshakeError, WSUpgradeRequest, WSUpgradeResponse

__all__ = [
    "MAX_HEAD_SIZE",
    "MAX_HEADERS",
    "accept_key",
    "new_client_key",
    "parse_upgrade_request",
    "build_upgrade_response",
    "build_error_response",
    "build_upgrade_request",
    "parse_upgrade_response",
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

ExtraHeaders = Union[Mapping[str, str], Iterable[Tuple[str, str]], None]


def accept_key(key: str) -> str:
    """Return the Sec-WebSocket-Accept value for a Sec-WebSocket-Key."""
    digest = hashlib.sha1(key.encode("ascii") + _GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def new_client_key() -> str:
    """Return a fresh random Sec-WebSocket-Key (16 random bytes, base64)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def _tokens(value: str) -> List[str]:
    return [t.strip().lower() for t in value.split(",") if t.strip()]


def _parse_head(raw: bytes, status: int) -> Tuple[List[bytes], Dict[str, str]]:
    """Split a head into its start line parts and a header dict.

    Raises WSHandshakeError with ``status`` (400 on the server) on syntax errors.
    """
    if not raw.endswith(b"\r\n\r\n"):
        raise WSHandshakeError(status, "incomplete HTTP head")
    lines = raw[:-4].split(b"\r\n")
    start = lines[0]
    if len(lines) - 1 > MAX_HEADERS:
        raise WSHandshakeError(431, f"more than {MAX_HEADERS} header lines")
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        # RFC 7230 3.2.4: no whitespace before the colon, no obsolete folding.
        if not sep or not _TOKEN.match(name):
            raise WSHandshakeError(status, "malformed header line")
        if b"\r" in value or b"\n" in value or b"\0" in value:
            raise WSHandshakeError(status, "invalid character in header value")
        key = name.decode("ascii").lower()
        text = value.strip(b" \t").decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return [start], headers


def parse_upgrade_request(raw: bytes,
                          allowed_origins: Optional[Iterable[str]] = None) -> WSUpgradeRequest:
    """Parse and validate a client's upgrade request head.

    :param raw: the whole head, ending with the blank line ``\\r\\n\\r\\n``.
    :param allowed_origins: when given, the exact Origin values accepted.
    :return: the request, with lowercase header names.
    :raises WSHandshakeError: with the HTTP status to answer: 400 malformed,
        426 wrong Sec-WebSocket-Version, 431 too many headers, 403 Origin
        not allowed.
    """
    (start,), headers = _parse_head(raw, 400)
    parts = start.split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1]:
        raise WSHandshakeError(400, "malformed request line")
    method, path, version = parts
    if method != b"GET":
        raise WSHandshakeError(400, "the upgrade request method must be GET")
    if version != b"HTTP/1.1":
        raise WSHandshakeError(400, "the upgrade request must be HTTP/1.1")
    if not headers.get("host"):
        raise WSHandshakeError(400, "missing Host header")
    if "websocket" not in _tokens(headers.get("upgrade", "")):
        raise WSHandshakeError(400, "missing or invalid Upgrade: websocket header")
    if "upgrade" not in _tokens(headers.get("connection", "")):
        raise WSHandshakeError(400, "missing or invalid Connection: Upgrade header")
    version_value = headers.get("sec-websocket-version")
    if version_value is None:
        raise WSHandshakeError(400, "missing Sec-WebSocket-Version header")
    if version_value.strip() != "13":
        raise WSHandshakeError(426, "unsupported Sec-WebSocket-Version",
                               [("Sec-WebSocket-Version", "13")])
    key = headers.get("sec-websocket-key", "")
    try:
        decoded = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        decoded = b""
    if len(decoded) != 16:
        raise WSHandshakeError(400, "Sec-WebSocket-Key must be base64 of 16 bytes")
    if allowed_origins is not None:
        origin = headers.get("origin")
        if origin is None or origin not in set(allowed_origins):
            raise WSHandshakeError(403, "Origin not allowed")
    return WSUpgradeRequest(method, path, version, headers)


def _format_headers(extra: ExtraHeaders) -> bytes:
    if not extra:
        return b""
    items: Iterable[Tuple[str, Any]] = extra.items() if isinstance(extra, Mapping) else extra
    out = []
    for name, value in items:
        line = f"{name}: {value}"
        if "\r" in line or "\n" in line:
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
    """Return the client's upgrade request head."""
    return (f"GET {path} HTTP/1.1\r\n"
            f"Host: {host_header}\r\n"
            f"Upgrade: websocket\r\n"
            f"Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n").encode("latin-1") \
        + _format_headers(extra_headers) + b"\r\n"


def parse_upgrade_response(raw: bytes, key: str,
                           deflate_offered: bool = False) -> WSUpgradeResponse:
    """Parse and validate the server's answer to our upgrade request.

    :raises WSHandshakeError: naming the status and reason when the server
        refused the upgrade or answered something that is not a valid 101.
    """
    (start,), headers = _parse_head(raw, 0)
    m = _STATUS_LINE.match(start)
    if m is None:
        raise WSHandshakeError(0, f"malformed status line {start[:100]!r}")
    version, status_b, reason = m.group(1), int(m.group(2)), m.group(3) or b""
    reason_text = reason.decode("latin-1")
    if status_b != 101:
        raise WSHandshakeError(
            status_b, f"{reason_text or 'error'}: the server did not switch protocols",
            list(headers.items()))
    if "websocket" not in _tokens(headers.get("upgrade", "")):
        raise WSHandshakeError(101, "response has no Upgrade: websocket header")
    if "upgrade" not in _tokens(headers.get("connection", "")):
        raise WSHandshakeError(101, "response has no Connection: Upgrade header")
    if headers.get("sec-websocket-accept", "").strip() != accept_key(key):
        raise WSHandshakeError(101, "wrong Sec-WebSocket-Accept in response")
    if headers.get("sec-websocket-extensions") and not deflate_offered:
        raise WSHandshakeError(101, "server chose an extension that was not offered")
    return WSUpgradeResponse(version, status_b, reason, headers)


# -- permessage-deflate (RFC 7692) ------------------------------------------

#: What a picows client offers when compression is enabled.
DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"


class DeflateParams:
    """The agreed permessage-deflate parameters, from our point of view.

    :ivar local_no_context_takeover: we reset our compressor after each message.
    :ivar local_max_window_bits: the largest LZ77 window our compressor may use.
    """

    __slots__ = ("local_no_context_takeover", "local_max_window_bits", "header")

    def __init__(self, local_no_context_takeover: bool, local_max_window_bits: int,
                 header: str) -> None:
        self.local_no_context_takeover = local_no_context_takeover
        self.local_max_window_bits = local_max_window_bits
        self.header = header

    def __repr__(self) -> str:
        return (f"DeflateParams(local_no_context_takeover={self.local_no_context_takeover}, "
                f"local_max_window_bits={self.local_max_window_bits}, header={self.header!r})")


def _parse_extensions(value: str) -> List[Tuple[str, List[Tuple[str, Optional[str]]]]]:
    """Split a Sec-WebSocket-Extensions value into (name, [(param, value)])."""
    result = []
    for item in value.split(","):
        parts = [p.strip() for p in item.split(";")]
        if not parts[0]:
            continue
        params: List[Tuple[str, Optional[str]]] = []
        for p in parts[1:]:
            if not p:
                continue
            k, eq, v = p.partition("=")
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] == '"':
                v = v[1:-1]
            params.append((k.strip().lower(), v if eq else None))
        result.append((parts[0].lower(), params))
    return result


def _window_bits(value: Optional[str]) -> Optional[int]:
    # RFC 7692 7.1.2: a decimal integer without leading zeroes.
    if value is None or not re.fullmatch(r"[1-9][0-9]?", value):
        return None
    bits = int(value)
    return bits if 8 <= bits <= 15 else None


def negotiate_deflate(header: Optional[str]) -> Optional[DeflateParams]:
    """Server side: accept the first valid permessage-deflate offer.

    :param header: the request's Sec-WebSocket-Extensions value, or None.
    :return: the agreed parameters (``header`` is the response value), or
        None when no offer is acceptable (the connection goes on without
        compression, RFC 7692 5).
    """
    if not header:
        return None
    for name, params in _parse_extensions(header):
        if name != "permessage-deflate":
            continue
        seen = set()
        ok = True
        server_nct = False
        server_bits = 15
        client_bits_offered = False
        for key, value in params:
            if key in seen:
                ok = False
                break
            seen.add(key)
            if key == "server_no_context_takeover" and value is None:
                server_nct = True
            elif key == "client_no_context_takeover" and value is None:
                pass  # the client's choice; our decompressor copes either way
            elif key == "server_max_window_bits":
                bits = _window_bits(value)
                if bits is None:
                    ok = False
                    break
                server_bits = bits
            elif key == "client_max_window_bits":
                if value is not None and _window_bits(value) is None:
                    ok = False
                    break
                client_bits_offered = True
            else:
                ok = False
                break
        if not ok:
            continue
        response = ["permessage-deflate"]
        if server_nct:
            response.append("server_no_context_takeover")
        if server_bits != 15:
            response.append(f"server_max_window_bits={server_bits}")
        del client_bits_offered  # we inflate with a 15-bit window: any size works
        return DeflateParams(server_nct, server_bits, "; ".join(response))
    return None


def parse_deflate_response(header: str) -> DeflateParams:
    """Client side: check the server's answer to :data:`DEFLATE_OFFER`.

    :raises WSHandshakeError: when the server answered with something we
        did not offer or cannot honour (RFC 7692 5: fail the connection).
    """
    extensions = _parse_extensions(header)
    if len(extensions) != 1 or extensions[0][0] != "permessage-deflate":
        raise WSHandshakeError(101, f"server chose extensions we did not offer: {header!r}")
    seen = set()
    client_nct = False
    client_bits = 15
    for key, value in extensions[0][1]:
        if key in seen:
            raise WSHandshakeError(101, f"duplicate permessage-deflate parameter {key}")
        seen.add(key)
        if key == "server_no_context_takeover" and value is None:
            pass
        elif key == "client_no_context_takeover" and value is None:
            client_nct = True
        elif key == "server_max_window_bits" and _window_bits(value) is not None:
            pass  # limits the server's compressor; we inflate with 15 bits
        elif key == "client_max_window_bits" and _window_bits(value) is not None:
            client_bits = _window_bits(value) or 15
        else:
            raise WSHandshakeError(101, f"invalid permessage-deflate parameter {key}")
    return DeflateParams(client_nct, client_bits, header)

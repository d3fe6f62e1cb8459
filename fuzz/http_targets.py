"""The handshake fuzz targets: the server's upgrade-request parser, the
client's upgrade-response parser, and both fed as raw bytes to a protocol
(fuzz_upgrade_request.py, fuzz_upgrade_response.py, fuzz_server_handshake.py,
fuzz_client_handshake.py run them).

Inputs are raw bytes, or a head assembled from the fuzzer's choices (a start
line and header lines from a table, values from the fuzzer, optionally one
line repeated to cross the 16 KiB and 128-header limits) so that most inputs
get past the syntax checks.

Checked: the parsers raise nothing but WSHandshakeError, with a status the
docs name; what they accept is consistent (a request they accept gets a 101
that the client parser accepts); the protocol answers exactly what the
parser decided (101, or the error status, then closes), never escapes an
exception, and never answers before the head is complete.
"""
from __future__ import annotations

import re
from typing import Any, List, Optional

from _harness import (
    CLIENT_KEY,
    fake_transport,
    Finding,
    check,
    drive,
    consume_chunk_sizes,
    feed_chunks,
    new_protocol,
    run,
)
from picows import WSListener
from picows.handshake import (
    DEFLATE_OFFER,
    MAX_HEAD_SIZE,
    MAX_HEADERS,
    accept_key,
    build_error_response,
    build_upgrade_request,
    build_upgrade_response,
    negotiate_deflate,
    parse_deflate_response,
    parse_upgrade_request,
    parse_upgrade_response,
)
from picows.types import WSHandshakeError

REQUEST_STATUSES = {400, 403, 426, 431}
GOOD_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ORIGINS = ["https://example.com", "http://localhost:8080", "null"]
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+\Z")

REQUEST_LINES = [b"GET /ws HTTP/1.1", b"GET / HTTP/1.1", b"POST /ws HTTP/1.1",
                 b"GET /ws HTTP/1.0", b"GET  HTTP/1.1", b"get /ws HTTP/1.1",
                 b"GET /ws?a=1&b=%20 HTTP/1.1", b"GET http://h/ws HTTP/1.1"]
STATUS_LINES = [b"HTTP/1.1 101 Switching Protocols", b"HTTP/1.1 101", b"HTTP/1.0 101 OK",
                b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found", b"HTTP/1.1 426 Upgrade Required",
                b"HTTP/1.1 101 \xff\xfe", b"HTTP/2 101 x"]
# (header name, typical good value); the fuzzer may replace the value.
REQUEST_HEADERS = [(b"Host", b"example.com"), (b"Upgrade", b"websocket"),
                   (b"Connection", b"Upgrade"), (b"Sec-WebSocket-Key", GOOD_KEY.encode()),
                   (b"Sec-WebSocket-Version", b"13"), (b"Origin", b"https://example.com"),
                   (b"Connection", b"keep-alive, Upgrade"), (b"Upgrade", b"WebSocket"),
                   (b"Sec-WebSocket-Protocol", b"chat"), (b"Sec-WebSocket-Extensions",
                   b"permessage-deflate"), (b"X-Pad", b"x"), (b"Host", b""),
                   (b"Sec-WebSocket-Extensions", b"permessage-deflate; client_max_window_bits; "
                    b"server_max_window_bits=10; server_no_context_takeover"),
                   (b"Sec-WebSocket-Extensions", b"x-foo, permessage-deflate; "
                    b"server_max_window_bits=\"9\", permessage-deflate")]
RESPONSE_HEADERS = [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"),
                    (b"Sec-WebSocket-Accept", accept_key(CLIENT_KEY).encode()),
                    (b"Sec-WebSocket-Extensions", b"permessage-deflate"),
                    (b"Sec-WebSocket-Extensions", b"permessage-deflate; client_no_context_takeover;"
                     b" client_max_window_bits=9; server_max_window_bits=15"),
                    (b"Sec-WebSocket-Protocol", b"chat"), (b"Content-Length", b"0"),
                    (b"Connection", b"close"), (b"X-Pad", b"x")]


def build_head(fdp: Any, start_lines: List[bytes], headers: List[tuple]) -> bytes:
    """A head from the fuzzer's choices (or its raw bytes)."""
    if fdp.ConsumeIntInRange(0, 3) == 0:
        return fdp.ConsumeBytes(fdp.remaining_bytes())
    if fdp.ConsumeIntInRange(0, 7) == 0:
        start = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40))
    else:
        start = fdp.PickValueInList(start_lines)
    lines = [start]
    picks = list(range(len(headers))) if fdp.ConsumeBool() else []
    for _ in range(fdp.ConsumeIntInRange(0, 8)):
        picks.insert(fdp.ConsumeIntInRange(0, len(picks)),
                     fdp.ConsumeIntInRange(0, len(headers) - 1))
    for i in picks:
        name, value = headers[i]
        how = fdp.ConsumeIntInRange(0, 31)
        if how == 0:
            value = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40))
        elif how == 1:
            name = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 20))
        elif how == 2:
            name = name.upper()
        elif how == 3:
            value = b" \t" + value + b" "
        elif how == 4:
            lines.append(name + b" : " + value)
            continue
        lines.append(name + b": " + value)
    # Cross the limits: one line repeated, or one long value.
    grow = fdp.ConsumeIntInRange(0, 7)
    if grow == 1:
        lines += [b"X-Many: y"] * fdp.PickValueInList(
            [MAX_HEADERS - len(lines) + 1, MAX_HEADERS - len(lines) + 2, 300])
    elif grow == 2:
        lines.append(b"X-Long: " + b"a" * fdp.PickValueInList(
            [MAX_HEAD_SIZE - 200, MAX_HEAD_SIZE, 40000]))
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    tail = fdp.ConsumeBytes(fdp.remaining_bytes())
    if tail[:1] == b"\0":
        head = head[:-2]  # sometimes no blank line at all
    return head + tail[1:]


def consume_origins(fdp: Any) -> Optional[List[str]]:
    kind = fdp.ConsumeIntInRange(0, 3)
    if kind == 0:
        return None
    if kind == 1:
        return [fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 30))]
    return ORIGINS[:kind]


# --------------------------------------------------------------------------
# parse_upgrade_request


def check_request(raw: bytes, origins: Optional[List[str]]) -> Optional[int]:
    """Parse `raw`; return None when accepted, else the error status."""
    try:
        request = parse_upgrade_request(raw, origins)
    except WSHandshakeError as exc:
        check(exc.status in REQUEST_STATUSES, f"status {exc.status} from parse_upgrade_request")
        check(isinstance(exc.reason, str) and exc.reason, "WSHandshakeError without a reason")
        if exc.status == 426:
            check(exc.headers == [("Sec-WebSocket-Version", "13")],
                  "426 without Sec-WebSocket-Version: 13")
        if exc.status == 403:
            check(origins is not None, "403 although no allowed_origins were given")
        # The error response must itself be valid HTTP that a client parses.
        response = build_error_response(exc.status, exc.reason, exc.headers)
        check(parse_error_status(response) == exc.status, "the error response does not parse")
        return exc.status
    check(request.method == b"GET", "accepted a request that is not GET")
    check(request.version == b"HTTP/1.1", "accepted a request that is not HTTP/1.1")
    check(all(isinstance(k, str) and _HEADER_NAME.match(k) for k in request.headers),
          f"header names not lowercase tokens: {list(request.headers)!r}")
    check(bool(request.headers.get("host")), "accepted a request without Host")
    check(raw[:-4].count(b"\r\n") <= MAX_HEADERS, "accepted more than 128 headers")
    if origins is not None:
        check(request.headers.get("origin") in origins, "accepted an Origin not allowed")
    key = request.headers["sec-websocket-key"]
    deflate = check_negotiation(request.headers.get("sec-websocket-extensions"))
    response = build_upgrade_response(
        request, None if deflate is None else [("Sec-WebSocket-Extensions", deflate.header)])
    parsed = parse_upgrade_response(response, key, deflate is not None)
    check(parsed.status == 101, "our own 101 does not parse")
    return None


def check_negotiation(header: Optional[str]) -> Any:
    """negotiate_deflate never raises; what it agrees to, a picows client
    accepts (parse_deflate_response)."""
    deflate = negotiate_deflate(header)
    if deflate is not None:
        check(deflate.header.startswith("permessage-deflate"), f"answer {deflate.header!r}")
        check(8 <= deflate.local_max_window_bits <= 15, "window bits out of range")
        try:
            parse_deflate_response(deflate.header)
        except WSHandshakeError as exc:
            raise Finding(f"a picows client refuses what the server agreed: {exc}") from None
    return deflate


def upgrade_request_input(data: bytes) -> tuple:
    import atheris

    fdp = atheris.FuzzedDataProvider(data)
    origins = consume_origins(fdp)
    raw = build_head(fdp, REQUEST_LINES, REQUEST_HEADERS)
    first = check_request(raw, origins)
    check(check_request(raw, origins) == first, "parse_upgrade_request is not deterministic")
    # The extension parser alone, on the whole input as text.
    check_negotiation(raw.decode("latin-1"))
    return (first, origins is None)


# --------------------------------------------------------------------------
# parse_upgrade_response


def check_response(raw: bytes, key: str, deflate_offered: bool = False) -> Optional[int]:
    try:
        response = parse_upgrade_response(raw, key, deflate_offered)
        extensions = response.headers.get("sec-websocket-extensions")
        if extensions:
            check(deflate_offered, "accepted an extension that was not offered")
            deflate = parse_deflate_response(extensions)
            check(8 <= deflate.local_max_window_bits <= 15, "window bits out of range")
    except WSHandshakeError as exc:
        check(isinstance(exc.status, int) and 0 <= exc.status <= 999,
              f"status {exc.status!r} from parse_upgrade_response")
        return exc.status
    check(response.status == 101, f"accepted status {response.status}")
    check(response.headers.get("sec-websocket-accept", "").strip() == accept_key(key),
          "accepted a wrong Sec-WebSocket-Accept")
    return None


def upgrade_response_input(data: bytes) -> tuple:
    import atheris

    fdp = atheris.FuzzedDataProvider(data)
    offered = fdp.ConsumeBool()
    raw = build_head(fdp, STATUS_LINES, RESPONSE_HEADERS)
    return (check_response(raw, CLIENT_KEY, offered),)


# --------------------------------------------------------------------------
# Raw bytes to a protocol's handshake


class _Listener(WSListener):
    def __init__(self) -> None:
        super().__init__()
        self.connected = 0
        self.disconnected = 0

    def on_ws_connected(self, transport: Any) -> None:
        self.connected += 1

    def on_ws_disconnected(self, transport: Any) -> None:
        self.disconnected += 1


def expected_head(stream: bytes) -> Optional[bytes]:
    """The head the protocol must take from `stream`: up to the first blank
    line if that is within MAX_HEAD_SIZE; b"" when the head is too long; None
    when the stream ends before the head does."""
    end = stream.find(b"\r\n\r\n")
    if end < 0:
        return b"" if len(stream) > MAX_HEAD_SIZE else None
    if end + 4 > MAX_HEAD_SIZE:
        return b""
    return stream[:end + 4]


def server_handshake_input(data: bytes) -> tuple:
    import atheris

    fdp = atheris.FuzzedDataProvider(data)
    origins = consume_origins(fdp)
    route = fdp.ConsumeIntInRange(0, 7)  # 0: None (404), 1: raises (500), 2: not a listener
    compression = fdp.ConsumeBool()
    sizes = consume_chunk_sizes(fdp)
    stream = build_head(fdp, REQUEST_LINES, REQUEST_HEADERS)
    listeners: List[_Listener] = []

    def factory(request: Any) -> Any:
        if route == 0:
            return None
        if route == 1:
            raise RuntimeError("factory fails on purpose")
        if route == 2:
            return object()
        listeners.append(_Listener())
        return listeners[-1]

    async def connection() -> Any:
        proto = new_protocol(False, factory, allowed_origins=origins,
                             enable_compression=compression, logger_name="fuzz")
        fake = fake_transport(proto, eof_capable=True)

        def steps() -> tuple:
            feed_chunks(proto, fake, stream, sizes)
            return fake.closing, bytes(fake.out)

        closing_after_feed, out = await drive(proto, fake, steps)
        head = expected_head(stream)
        if head is None:
            check(out == b"", f"answered {out[:40]!r} before the head was complete")
            check(not listeners, "a listener was made before the head was complete")
            return "incomplete"
        if head == b"":
            check(out.startswith(b"HTTP/1.1 431 "), f"a head over {MAX_HEAD_SIZE} bytes got "
                                                   f"{out[:40]!r}")
            check(closing_after_feed, "not closed after 431")
            return 431
        status = check_request(head, origins)
        if status is None:
            status = {0: 404, 1: 500, 2: 500}.get(route)
        if status is None:
            check(out.startswith(b"HTTP/1.1 101 "), f"a valid request got {out[:40]!r}")
            check(len(listeners) == 1 and listeners[0].connected == 1,
                  "on_ws_connected not called once")
            check(listeners[0].disconnected == 1, "on_ws_disconnected not called once")
            request = parse_upgrade_request(head, origins)
            deflate = negotiate_deflate(request.headers.get("sec-websocket-extensions")) \
                if compression else None
            answer = out[:out.index(b"\r\n\r\n") + 4]
            if deflate is None:
                check(b"Sec-WebSocket-Extensions" not in answer, "an extension nobody agreed")
            else:
                check(b"Sec-WebSocket-Extensions: " + deflate.header.encode() in answer,
                      "the agreed extension is not in the 101")
        else:
            check(out.startswith(b"HTTP/1.1 %d " % status),
                  f"expected status {status}, got {out[:40]!r}")
            check(closing_after_feed, f"not closed after {status}")
            check(not any(lst.connected for lst in listeners), "rejected but connected")
            check(parse_error_status(out) == status, "the error response does not parse")
        return status

    return (run(connection),)


def parse_error_status(out: bytes) -> int:
    end = out.find(b"\r\n\r\n")
    check(end > 0, "error response without a blank line")
    try:
        parse_upgrade_response(out[:end + 4], GOOD_KEY)
    except WSHandshakeError as exc:
        return exc.status
    raise Finding("an error response parsed as a 101")


def client_handshake_input(data: bytes) -> tuple:
    import atheris

    fdp = atheris.FuzzedDataProvider(data)
    compression = fdp.ConsumeBool()
    sizes = consume_chunk_sizes(fdp)
    stream = build_head(fdp, STATUS_LINES, RESPONSE_HEADERS)
    listeners: List[_Listener] = []

    def factory() -> Any:
        listeners.append(_Listener())
        return listeners[-1]

    async def connection() -> Any:
        extra = [("Sec-WebSocket-Extensions", DEFLATE_OFFER)] if compression else None
        proto = new_protocol(True, factory, enable_compression=compression, logger_name="fuzz",
                             upgrade_request=build_upgrade_request(
                                 "example.com", "/ws", CLIENT_KEY, extra))
        fake = fake_transport(proto)
        await drive(proto, fake, lambda: feed_chunks(proto, fake, stream, sizes))
        fut = proto.handshake_future
        check(fut.done(), "handshake_future not done after connection_lost")
        exc = fut.exception()
        head = expected_head(stream)
        if head is None:
            check(exc is not None and not isinstance(exc, WSHandshakeError),
                  f"incomplete head ended with {exc!r}")
            return "incomplete"
        if head == b"":
            check(isinstance(exc, WSHandshakeError) and exc.status == 431,
                  f"a head over {MAX_HEAD_SIZE} bytes ended with {exc!r}")
            return 431
        status = check_response(head, CLIENT_KEY, compression)
        if status is None:
            check(exc is None, f"a valid 101 ended with {exc!r}")
            check(len(listeners) == 1 and listeners[0].connected == 1,
                  "on_ws_connected not called once")
            check(listeners[0].disconnected == 1, "on_ws_disconnected not called once")
        else:
            check(isinstance(exc, WSHandshakeError) and exc.status == status,
                  f"expected WSHandshakeError({status}), got {exc!r}")
            check(not listeners, "listener made for a refused handshake")
        return status

    return (run(connection),)

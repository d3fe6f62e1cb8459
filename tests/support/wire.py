"""RFC 6455 on the wire, written from the RFC and independent of picows, so
that the library is checked against a second implementation.

Frames: ``build_header`` / ``build_frame`` encode, ``apply_mask`` masks,
``decode_frames`` decodes a byte string of complete frames (what the library
wrote to a fake transport) and ``read_frame`` reads one frame from an
``asyncio.StreamReader`` (a loopback peer). ``close_payload`` makes a CLOSE
body.

Handshake: ``expected_accept`` (section 4.2.2), ``upgrade_request`` and
``switching_response`` build the two heads; ``client_upgrade`` is a request
with a fresh random key, as a raw loopback client sends it.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import os
import struct
from dataclasses import dataclass

RFC_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SERVER_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # the RFC 6455 section 1.3 example
CLIENT_KEY = "x3JJHMbDL1EzLkh9GBhXDw=="

# Opcodes, spelled out so the tests do not depend on the library's enum.
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
RSV1, RSV2, RSV3 = 0x4, 0x2, 0x1  # values of the ``rsv`` argument below


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


# --------------------------------------------------------------------------
# Handshake heads


def expected_accept(key: str | bytes) -> str:
    """Sec-WebSocket-Accept computed from RFC 6455 section 4.2.2."""
    return base64.b64encode(hashlib.sha1(_bytes(key) + RFC_GUID).digest()).decode()


def new_key() -> str:
    """A fresh Sec-WebSocket-Key: 16 random bytes, base64 (section 4.1)."""
    return base64.b64encode(os.urandom(16)).decode()


def upgrade_request(key: str = SERVER_KEY, *, host: str | bytes = b"example.com",
                    path: str | bytes = b"/ws", extra: bytes = b"") -> bytes:
    """A client's opening handshake; ``extra`` holds more header lines."""
    return (b"GET " + _bytes(path) + b" HTTP/1.1\r\n"
            b"Host: " + _bytes(host) + b"\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + _bytes(key) + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n")


def client_upgrade(path: str = "/", host: str = "127.0.0.1") -> tuple[bytes, str]:
    """(request, key): an upgrade request with a fresh key."""
    key = new_key()
    return upgrade_request(key, host=host, path=path), key


def switching_response(key: str = CLIENT_KEY, *, accept: str | None = None,
                       extra: bytes = b"") -> bytes:
    """A server's 101 answer to ``key`` (or with ``accept`` as it is)."""
    accept = expected_accept(key) if accept is None else accept
    return (b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept.encode() + b"\r\n" + extra + b"\r\n")


def head_headers(data: bytes) -> tuple[bytes, dict[str, str]]:
    """(start line, headers with lower-case names) of the HTTP head in ``data``;
    a repeated header name fails."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        assert name.strip().lower() not in headers, f"{name} repeated"
        headers[name.strip().lower()] = value.strip()
    return head[0].encode(), headers


# --------------------------------------------------------------------------
# Frames


def apply_mask(mask: bytes, data: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated (section 5.3)."""
    if not data:
        return b""
    n = len(data)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")


_mask_counter = itertools.count(1)


def next_mask() -> bytes:
    """A varying, reproducible, never-zero masking key."""
    n = next(_mask_counter)
    return struct.pack("!I", (n * 0x9E3779B1 & 0xFFFFFFFF) | 0x01010101)


def build_header(opcode: int, length: int, *, fin: bool = True, rsv: int = 0,
                 mask: bytes | None = None, length_form: int | None = None) -> bytes:
    """The header of a frame, RFC 6455 section 5.2.

    ``length`` may be any 64-bit value (the payload need not follow);
    ``length_form`` forces 0 (7-bit), 126 (16-bit) or 127 (64-bit) encoding.
    """
    b0 = (0x80 if fin else 0) | ((rsv & 0x7) << 4) | (opcode & 0xF)
    mbit = 0x80 if mask is not None else 0
    form = length_form
    if form is None:
        form = 0 if length <= 125 else 126 if length <= 0xFFFF else 127
    if form == 0:
        head = bytes([b0, mbit | length])
    elif form == 126:
        head = bytes([b0, mbit | 126]) + struct.pack("!H", length)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", length)
    if mask is not None:
        assert len(mask) == 4
        head += mask
    return head


def build_frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0,
                mask: bytes | None = None) -> bytes:
    """A complete frame; ``mask=None`` unmasked, else the 4-byte masking key."""
    payload = bytes(payload)
    head = build_header(opcode, len(payload), fin=fin, rsv=rsv, mask=mask)
    return head + (apply_mask(mask, payload) if mask is not None else payload)


def client_frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    """A frame masked with a random key, as a client must send it (section 5.3)."""
    return build_frame(opcode, payload, fin=fin, mask=os.urandom(4))


def server_frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    """An unmasked frame, as a server sends it."""
    return build_frame(opcode, payload, fin=fin)


def close_payload(code: int | None, reason: bytes = b"") -> bytes:
    """The body of a CLOSE frame (section 5.5.1); ``code=None``: ``reason`` alone."""
    if code is None:
        return reason
    return struct.pack("!H", code) + reason


@dataclass
class WireFrame:
    """One frame decoded from bytes on the wire."""
    fin: bool
    rsv: int
    opcode: int
    masked: bool
    mask: bytes | None
    payload: bytes  # unmasked
    header_len: int
    length_form: int  # 0, 126 or 127
    raw: bytes

    @property
    def close_code(self) -> int | None:
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> bytes:
        return self.payload[2:]


def decode_frames(data: bytes) -> list[WireFrame]:
    """Decode a byte string that must hold only complete frames."""
    frames = []
    pos = 0
    while pos < len(data):
        start = pos
        assert len(data) - pos >= 2, f"truncated frame header at {pos}: {data[pos:]!r}"
        b0, b1 = data[pos], data[pos + 1]
        pos += 2
        length = b1 & 0x7F
        form = 0
        if length == 126:
            form = 126
            assert len(data) - pos >= 2, "truncated 16-bit length"
            (length,) = struct.unpack_from("!H", data, pos)
            pos += 2
        elif length == 127:
            form = 127
            assert len(data) - pos >= 8, "truncated 64-bit length"
            (length,) = struct.unpack_from("!Q", data, pos)
            pos += 8
        mask = None
        if b1 & 0x80:
            assert len(data) - pos >= 4, "truncated masking key"
            mask = bytes(data[pos:pos + 4])
            pos += 4
        header_len = pos - start
        payload = bytes(data[pos:pos + length])
        assert len(payload) == length, f"truncated payload: want {length}, have {len(payload)}"
        pos += length
        if mask is not None:
            payload = apply_mask(mask, payload)
        frames.append(WireFrame(bool(b0 & 0x80), (b0 >> 4) & 0x7, b0 & 0xF, mask is not None,
                                mask, payload, header_len, form, bytes(data[start:pos])))
    return frames


async def read_frame(reader: asyncio.StreamReader, *, masked: bool = False,
                     first_byte: int | None = None) -> tuple[bool, int, bytes]:
    """Read one frame: (fin, opcode, payload). A client's frames are
    ``masked`` (RFC 6455 5.1); the payload is returned unmasked. Pass
    ``first_byte`` when the caller already read it."""
    if first_byte is None:
        b0, b1 = await reader.readexactly(2)
    else:
        b0, b1 = first_byte, (await reader.readexactly(1))[0]
    assert bool(b1 & 0x80) == masked, f"mask bit is {bool(b1 & 0x80)}, expected {masked}"
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4) if masked else None
    payload = await reader.readexactly(n)
    if mask is not None:
        payload = apply_mask(mask, payload)
    return bool(b0 & 0x80), b0 & 0x0F, payload

"""Sending after our CLOSE, and inflating a stream ended by a BFINAL block."""
from __future__ import annotations

import zlib

from test_deflate_frames import make_deflate  # noqa: F401  (fixture)

from picows import WSCloseCode, WSMsgType

from tests.support import BINARY, CLOSE, PING, TEXT, close_payload


async def test_no_data_frames_after_our_close(conn):
    conn.ws.send(WSMsgType.TEXT, b"before")
    conn.ws.send_close(WSCloseCode.GOING_AWAY)
    conn.ws.send(WSMsgType.TEXT, b"after")
    conn.ws.send(WSMsgType.BINARY, b"after", fin=False)
    conn.ws.send(WSMsgType.CONTINUATION, b"after")
    # RFC 6455 5.5.1: no data frames after a CLOSE; a control frame may go.
    conn.ws.send_ping(b"still allowed")
    sent = [(f.opcode, f.payload) for f in conn.sent()]
    assert sent == [(TEXT, b"before"), (CLOSE, close_payload(1001)),
                    (PING, b"still allowed")]


def _bfinal_message(data: bytes) -> bytes:
    """A whole deflate stream (BFINAL set), without the 0x00 octet that RFC
    7692 7.2.3.4 has the sender append."""
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush(zlib.Z_FINISH)


async def test_bfinal_without_trailing_octet_is_accepted(make_deflate, role):  # noqa: F811
    conn = await make_deflate(role)
    for data in (b"first message", b"second message", b"x" * 70000):
        conn.feed_frame(BINARY, _bfinal_message(data), rsv=4)
    assert [f.payload for f in conn.frames] == [b"first message", b"second message",
                                                 b"x" * 70000]
    assert not conn.sent_closes()

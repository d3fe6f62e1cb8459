"""The inflater of permessage-deflate (RFC 7692 7.2.2) on a fake transport,
both roles: stream ends (BFINAL blocks, 7.2.3.4) anywhere in a frame cost
linear time, the sliding window survives them, the output stays bounded by
max_frame_size, and the close reasons of RSV violations say what happened.

The peer's bytes are built here by hand or with Python's zlib, independently
of picows.
"""
from __future__ import annotations

import random
import time
import zlib

import pytest
from test_deflate_frames import PMD, TAIL, data_frames, make_deflate, no_close  # noqa: F401

from tests.support import BINARY, CONT, PING, RSV1, RSV2, TEXT

# A complete deflate stream that inflates to nothing: one fixed-Huffman block
# with BFINAL set holding only the end-of-block code.
EMPTY_FINAL_STREAM = b"\x03\x00"


def raw_stream(data: bytes, zdict: bytes | None = None, final: bool = False) -> bytes:
    """A raw deflate stream of `data`; with `zdict` it may refer back into
    that (what a peer's window held). final: ends with a BFINAL block, else
    sync-flushed with the 00 00 ff ff stripped (RFC 7692 7.2.1)."""
    c = (zlib.compressobj(9, zlib.DEFLATED, -15, zdict=zdict) if zdict
         else zlib.compressobj(9, zlib.DEFLATED, -15))
    if final:
        return c.compress(data) + c.flush(zlib.Z_FINISH)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


# --------------------------------------------------------------------------
# Stream ends cost linear time


@pytest.mark.parametrize("role", ["server", "client"])
async def test_many_stream_ends_in_one_frame_are_linear(make_deflate, role):  # noqa: F811
    # 1 MiB of complete empty streams: 524288 stream ends in one legal frame.
    # It used to cost seconds (quadratic copies of the rest of the input).
    conn = await make_deflate(role)
    frame = conn.peer_frame(BINARY, EMPTY_FINAL_STREAM * (1 << 19), rsv=RSV1)
    started = time.perf_counter()
    conn.feed(frame)
    elapsed = time.perf_counter() - started
    no_close(conn)
    assert [f.payload for f in data_frames(conn)] == [b""]
    assert elapsed < 1.0, f"1 MiB of empty deflate streams took {elapsed:.2f} s"


@pytest.mark.parametrize("role", ["server", "client"])
async def test_stream_ends_with_output_between(make_deflate, role):  # noqa: F811
    # Streams that each end with BFINAL and each produce output: all of it
    # arrives, in order, in one frame.
    conn = await make_deflate(role)
    parts = [bytes([65 + i % 26]) * (i + 1) for i in range(300)]
    payload = b"".join(raw_stream(p, final=True) for p in parts)
    conn.feed_frame(BINARY, payload, rsv=RSV1)
    no_close(conn)
    assert [f.payload for f in data_frames(conn)] == [b"".join(parts)]


@pytest.mark.parametrize("role", ["server", "client"])
async def test_stream_ends_cannot_exceed_max_frame_size(make_deflate, role):  # noqa: F811
    # The output limit counts across stream ends: 64 streams of 1 KiB each
    # against a 32 KiB limit.
    conn = await make_deflate(role, max_frame_size=32 * 1024)
    stream = raw_stream(b"x" * 1024, final=True)
    conn.feed_frame(BINARY, stream * 64, rsv=RSV1)
    await conn.expect_close(1009)
    assert data_frames(conn) == []


# --------------------------------------------------------------------------
# The sliding window survives stream ends and message boundaries


@pytest.mark.parametrize("role", ["server", "client"])
async def test_stream_after_bfinal_refers_back_30k_across_messages(make_deflate, role):  # noqa: F811
    # Message 1: 30 KiB the peer's window then holds. Message 2 begins with
    # a complete (empty) stream, so the inflater restarts at once, and its
    # next stream copies from 30 KiB back, into message 1. RFC 7692 7.2.3.4
    # and context takeover allow that; it used to fail with 1007.
    conn = await make_deflate(role)
    first = random.Random(1).randbytes(30 * 1024)
    conn.feed_frame(BINARY, raw_stream(first), rsv=RSV1)
    back = first[:4096]
    second = EMPTY_FINAL_STREAM + raw_stream(back, zdict=first)
    assert len(second) < 1024, "the stream should be mostly back references"
    conn.feed_frame(BINARY, second, rsv=RSV1)
    no_close(conn)
    assert [f.payload for f in data_frames(conn)] == [first, back]


@pytest.mark.parametrize("role", ["server", "client"])
async def test_stream_after_bfinal_refers_back_across_frames(make_deflate, role):  # noqa: F811
    # The same inside one fragmented message: the window holds the earlier
    # frames' output, not only the current frame's.
    conn = await make_deflate(role)
    first = random.Random(2).randbytes(20 * 1024)
    # Mid-message a frame ends where the peer flushed: 00 00 ff ff kept.
    conn.feed_frame(BINARY, raw_stream(first) + TAIL, fin=False, rsv=RSV1)
    conn.feed_frame(CONT, EMPTY_FINAL_STREAM + raw_stream(first[:2000], zdict=first))
    no_close(conn)
    frames = data_frames(conn)
    assert b"".join(f.payload for f in frames) == first + first[:2000]


# --------------------------------------------------------------------------
# Close reasons of RSV violations


@pytest.mark.parametrize("role", ["server", "client"])
@pytest.mark.parametrize("case, needle", [
    ("control", b"control frame"),
    ("continuation", b"CONTINUATION"),
    ("rsv2", b"RSV2 or RSV3"),
])
async def test_rsv_violation_reason_with_deflate(make_deflate, role, case, needle):  # noqa: F811
    conn = await make_deflate(role)
    if case == "control":
        conn.feed_frame(PING, b"x", rsv=RSV1)
    elif case == "continuation":
        conn.feed_frame(TEXT, raw_stream(b"ab"), fin=False, rsv=RSV1)
        conn.feed_frame(CONT, raw_stream(b"cd"), rsv=RSV1)
    else:
        conn.feed_frame(BINARY, raw_stream(b"ab"), rsv=RSV1 | RSV2)
    close = (await conn.expect_close(1002))
    assert needle in close.payload, close.payload
    assert b"no extension was negotiated" not in close.payload


@pytest.mark.parametrize("role", ["server", "client"])
async def test_rsv_without_extension_reason(make_deflate, role):  # noqa: F811
    conn = await make_deflate(role, agreed=None)
    assert conn.ws.extensions is None
    conn.feed_frame(BINARY, b"ab", rsv=RSV1)
    close = await conn.expect_close(1002)
    assert b"no extension was negotiated" in close.payload


async def test_context_kept_even_when_the_peer_promised_none(make_deflate):  # noqa: F811
    # The server said server_no_context_takeover but refers back anyway:
    # accepted, as before (the inflater is not reset between messages).
    conn = await make_deflate("client", f"{PMD}; server_no_context_takeover")
    first = random.Random(3).randbytes(4096)
    conn.feed_frame(BINARY, raw_stream(first), rsv=RSV1)
    conn.feed_frame(BINARY, raw_stream(first[:1000], zdict=first), rsv=RSV1)
    no_close(conn)
    assert [f.payload for f in data_frames(conn)] == [first, first[:1000]]

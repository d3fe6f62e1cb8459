"""Each strict RFC 6455 rule, for both roles: the violation is answered with
one CLOSE carrying the right code, then the connection is closed."""
from __future__ import annotations

import pytest

from picows import WSMsgType

from tests.support import (BINARY, CLOSE, CONT, PING, PONG, RSV1, RSV2, RSV3, TEXT, build_frame,
    close_payload)


MiB = 1024 * 1024

# --------------------------------------------------------------------------
# 5.1 masking


async def test_server_rejects_unmasked_frame(server):
    server.feed_frame(TEXT, b"hello", mask=None)
    await server.expect_close(1002, delivered=[])


async def test_server_rejects_unmasked_control_frame(server):
    server.feed_frame(PING, b"hello", mask=None)
    await server.expect_close(1002, delivered=[])


async def test_client_rejects_masked_frame(client):
    client.feed_frame(TEXT, b"hello", mask=b"\x01\x02\x03\x04")
    await client.expect_close(1002, delivered=[])


async def test_client_rejects_masked_frame_even_with_zero_mask(client):
    client.feed_frame(BINARY, b"hello", mask=b"\x00\x00\x00\x00")
    await client.expect_close(1002)


# --------------------------------------------------------------------------
# 5.2 RSV bits without a negotiated extension


@pytest.mark.parametrize("rsv", [RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3],
                         ids=["rsv1", "rsv2", "rsv3", "all"])
@pytest.mark.parametrize("opcode", [TEXT, BINARY, PING])
async def test_rsv_bits_rejected(conn, rsv, opcode):
    conn.feed_frame(opcode, b"data", rsv=rsv)
    await conn.expect_close(1002, delivered=[])


async def test_rsv_on_continuation_rejected(conn):
    conn.feed_frame(TEXT, b"a", fin=False)
    conn.feed_frame(CONT, b"b", rsv=RSV1)
    await conn.expect_close(1002)


# --------------------------------------------------------------------------
# 5.2 reserved opcodes


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
async def test_reserved_opcode_rejected(conn, opcode):
    conn.feed_frame(opcode, b"")
    await conn.expect_close(1002, delivered=[])


@pytest.mark.parametrize("opcode", [3, 11])
async def test_reserved_opcode_inside_fragmented_message_rejected(conn, opcode):
    conn.feed_frame(TEXT, b"a", fin=False)
    conn.feed_frame(opcode, b"x")
    await conn.expect_close(1002)


# --------------------------------------------------------------------------
# 5.5 control frames


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
@pytest.mark.parametrize("length", [126, 127, 1000, 65536])
async def test_control_frame_over_125_rejected(conn, opcode, length):
    payload = b"\x03\xe8" + b"x" * (length - 2)
    conn.feed_frame(opcode, payload)
    await conn.expect_close(1002, delivered=[])


@pytest.mark.parametrize("opcode", [PING, PONG])
async def test_control_frame_of_125_accepted(make_conn, role, opcode):
    conn = await make_conn(role, enable_auto_pong=False)
    conn.feed_frame(opcode, b"y" * 125)
    assert [len(f.payload) for f in conn.frames] == [125]
    assert not conn.fake.closing


async def test_close_of_125_accepted(conn):
    conn.feed_frame(CLOSE, close_payload(1000, b"r" * 123))
    assert [len(f.payload) for f in conn.frames] == [125]


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
async def test_fragmented_control_frame_rejected(conn, opcode):
    conn.feed_frame(opcode, b"\x03\xe8", fin=False)
    await conn.expect_close(1002, delivered=[])


# --------------------------------------------------------------------------
# 5.4 fragmentation order


@pytest.mark.parametrize("fin", [True, False])
async def test_continuation_without_open_message(conn, fin):
    conn.feed_frame(CONT, b"orphan", fin=fin)
    await conn.expect_close(1002, delivered=[])


async def test_continuation_after_finished_message(conn):
    conn.feed_frame(TEXT, b"a", fin=False)
    conn.feed_frame(CONT, b"b", fin=True)
    conn.feed_frame(CONT, b"c", fin=True)
    await conn.expect_close(1002)
    assert [f.payload for f in conn.frames] == [b"a", b"b"]


@pytest.mark.parametrize("first", [TEXT, BINARY])
@pytest.mark.parametrize("second", [TEXT, BINARY])
@pytest.mark.parametrize("second_fin", [True, False])
async def test_new_message_while_fragmented_open(conn, first, second, second_fin):
    conn.feed_frame(first, b"a", fin=False)
    conn.feed_frame(second, b"b", fin=second_fin)
    await conn.expect_close(1002)
    assert [f.payload for f in conn.frames] == [b"a"]


async def test_new_message_while_fragmented_open_after_continuation(conn):
    conn.feed_frame(BINARY, b"a", fin=False)
    conn.feed_frame(CONT, b"b", fin=False)
    conn.feed_frame(BINARY, b"c")
    await conn.expect_close(1002)


async def test_control_frames_interleaved_in_fragmented_message(conn):
    conn.feed_frame(TEXT, b"frag", fin=False)
    conn.feed_frame(PING, b"p1")
    conn.feed_frame(CONT, b"men", fin=False)
    conn.feed_frame(PONG, b"p2")
    conn.feed_frame(PING, b"")
    conn.feed_frame(CONT, b"ted", fin=True)
    conn.feed_frame(BINARY, b"next")
    assert [(int(f.msg_type), f.fin, f.payload) for f in conn.frames] == [
        (TEXT, False, b"frag"), (PING, True, b"p1"), (CONT, False, b"men"),
        (PONG, True, b"p2"), (PING, True, b""), (CONT, True, b"ted"), (BINARY, True, b"next")]
    assert [(f.opcode, f.payload) for f in conn.sent()] == [(PONG, b"p1"), (PONG, b"")]
    assert not conn.fake.closing


async def test_close_interleaved_in_fragmented_message(conn):
    conn.feed_frame(BINARY, b"frag", fin=False)
    conn.feed_frame(CLOSE, close_payload(1000))
    assert [int(f.msg_type) for f in conn.frames] == [BINARY, CLOSE]
    assert [f.close_code for f in conn.sent_closes()] == [1000]
    if conn.is_client:
        conn.fake.peer_close()
    await conn.wait_disconnected()


# --------------------------------------------------------------------------
# 5.2 payload length


@pytest.mark.parametrize("length", [1 << 63, (1 << 64) - 1])
async def test_length_with_top_bit_set(conn, length):
    header, _ = conn.peer_header(BINARY, length, length_form=127)
    conn.feed(header)
    await conn.expect_close(1002)


@pytest.mark.parametrize("length", [10 * MiB + 1, 11 * MiB, (1 << 32) + 5, (1 << 63) - 1])
async def test_over_default_max_frame_size_1009_on_header(conn, length):
    header, _ = conn.peer_header(BINARY, length)
    conn.feed(header)  # the payload never comes
    await conn.expect_close(1009, delivered=[])


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
async def test_custom_max_frame_size(make_conn, role, opcode):
    conn = await make_conn(role, max_frame_size=1000)
    conn.feed_frame(opcode, b"a" * 1000)
    assert [len(f.payload) for f in conn.frames] == [1000]
    header, _ = conn.peer_header(opcode, 1001)
    conn.feed(header)
    await conn.expect_close(1009)
    assert len(conn.frames) == 1


async def test_custom_max_frame_size_continuation(make_conn, role):
    conn = await make_conn(role, max_frame_size=100)
    conn.feed_frame(BINARY, b"a" * 100, fin=False)
    header, _ = conn.peer_header(CONT, 101)
    conn.feed(header)
    await conn.expect_close(1009)


async def test_default_max_frame_size_exact_accepted(conn):
    payload = b"m" * (10 * MiB)
    conn.feed_frame(BINARY, payload)
    assert [len(f.payload) for f in conn.frames] == [10 * MiB]
    assert not conn.fake.closing


# --------------------------------------------------------------------------
# 8.1 UTF-8 in TEXT messages

INVALID_UTF8 = {
    "ff": b"\xff",
    "fe": b"\xfe",
    "lone-continuation": b"a\x80b",
    "overlong-slash": b"\xc0\xaf",
    "overlong-3": b"\xe0\x80\xaf",
    "surrogate": b"\xed\xa0\x80",
    "above-10ffff": b"\xf4\x90\x80\x80",
    "f5": b"\xf5\x80\x80\x80",
    "truncated-then-ascii": b"\xe2\x82a",
}


@pytest.mark.parametrize("payload", INVALID_UTF8.values(), ids=INVALID_UTF8.keys())
async def test_invalid_utf8_text_1007(conn, payload):
    conn.feed_frame(TEXT, b"ok " + payload + b" ok")
    await conn.expect_close(1007, delivered=[])


@pytest.mark.parametrize("payload", [b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"abc\xf0"])
async def test_text_ending_mid_code_point_1007(conn, payload):
    conn.feed_frame(TEXT, payload)
    await conn.expect_close(1007)


@pytest.mark.parametrize("payload", INVALID_UTF8.values(), ids=INVALID_UTF8.keys())
async def test_invalid_utf8_in_binary_is_fine(conn, payload):
    conn.feed_frame(BINARY, payload)
    assert [f.payload for f in conn.frames] == [payload]
    assert not conn.fake.closing


@pytest.mark.parametrize("text", ["é", "✓", "😀", "a😀b✓cé"])
async def test_fragments_split_inside_code_point_are_fine(make_conn, role, text):
    data = text.encode()
    for cut in range(1, len(data)):
        conn = await make_conn(role)
        conn.feed_frame(TEXT, data[:cut], fin=False)
        conn.feed_frame(CONT, data[cut:], fin=True)
        assert b"".join(f.payload for f in conn.frames) == data, f"cut at {cut}"
        assert not conn.fake.closing


async def test_fragments_one_byte_each_are_fine(conn):
    data = "héllo ✓ 😀".encode()
    conn.feed_frame(TEXT, data[:1], fin=False)
    for i in range(1, len(data) - 1):
        conn.feed_frame(CONT, data[i:i + 1], fin=False)
    conn.feed_frame(CONT, data[-1:], fin=True)
    assert b"".join(f.payload for f in conn.frames) == data
    assert not conn.fake.closing


@pytest.mark.parametrize("fragments", [
    # (payload, fin) of the TEXT frame, then of its continuations
    [(b"fine", False), (b"\xc3", True)],          # the message ends mid code point
    [(b"fine", False), (b"ok\xe2\x82", True)],
    [(b"fine", False), (b"\xf0\x9f", True)],
    [(b"x\xe2\x82", False), (b"", True)],         # an empty final fragment after it
    [(b"ok\xc3", False), (b"(", True)],            # valid so far; \xc3 ( is invalid
    [(b"good", False), (b"bad\xff", False)],       # invalid before the message ends
], ids=["ends-in-2-byte", "ends-in-3-byte", "ends-in-4-byte", "empty-final", "across",
        "later-fragment"])
async def test_invalid_utf8_across_fragments_1007(conn, fragments):
    for i, (payload, fin) in enumerate(fragments):
        conn.feed_frame(CONT if i else TEXT, payload, fin=fin)
    await conn.expect_close(1007)


@pytest.mark.parametrize("before, opcode, payload, cut", [
    ([], TEXT, b"ab\xff" + b"c" * 97, 3),
    ([(TEXT, b"ok")], CONT, b"\xc0" + b"c" * 49, 2),
], ids=["text", "continuation"])
async def test_invalid_utf8_in_partial_frame_closed_early(conn, before, opcode, payload, cut):
    for first_opcode, first_payload in before:
        conn.feed_frame(first_opcode, first_payload, fin=False)
    header, mask = conn.peer_header(opcode, len(payload))
    body = payload if mask is None else build_frame(opcode, payload, mask=mask)[len(header):]
    conn.feed(header + body[:cut])
    # the rest of the frame has not arrived: the CLOSE must already be out
    assert [c.close_code for c in conn.sent_closes()] == [1007], \
        "invalid UTF-8 in a partial frame must be detected before the frame completes"
    await conn.expect_close(1007)
    assert [f.payload for f in conn.frames] == [p for _, p in before]  # none of the bad frame


async def test_control_frames_inside_text_do_not_disturb_validation(conn):
    """A PING/PONG payload is not part of the TEXT message: bytes that are not
    UTF-8 there must neither fail nor reset the message's validator state."""
    data = "a✓b".encode()  # the check mark is 3 bytes: cut inside it
    conn.feed_frame(TEXT, data[:2], fin=False)
    conn.feed_frame(PING, b"\xff\xfe\x80")
    conn.feed_frame(PONG, b"\xc3")
    conn.feed_frame(CONT, data[2:], fin=True)
    assert b"".join(f.payload for f in conn.frames if int(f.msg_type) in (TEXT, CONT)) == data
    assert conn.sent_closes() == []
    assert not conn.fake.closing


async def test_control_frame_inside_text_keeps_pending_code_point(conn):
    """The validator state survives the interleaved control frame: the
    message still ends mid code point, so 1007."""
    conn.feed_frame(TEXT, b"\xe2", fin=False)
    conn.feed_frame(PING, b"ascii")
    conn.feed_frame(CONT, b"\x9c", fin=True)
    await conn.expect_close(1007)


async def test_binary_message_does_not_leak_into_next_text(conn):
    conn.feed_frame(BINARY, b"\xe2", fin=False)
    conn.feed_frame(CONT, b"\xff\xc3", fin=True)
    conn.feed_frame(TEXT, b"plain")
    conn.feed_frame(TEXT, "é".encode())
    assert [f.payload for f in conn.frames][-2:] == [b"plain", "é".encode()]
    assert not conn.fake.closing


async def test_validator_reset_between_text_messages(conn):
    conn.feed_frame(TEXT, "€".encode())
    conn.feed_frame(TEXT, "€".encode()[:2], fin=False)
    conn.feed_frame(CONT, "€".encode()[2:], fin=True)
    conn.feed_frame(TEXT, b"ascii")
    assert len(conn.frames) == 4
    assert not conn.fake.closing


async def test_validation_off_delivers_invalid_text(make_conn, role):
    conn = await make_conn(role, enable_utf8_validation=False)
    conn.feed_frame(TEXT, b"bad\xff")
    conn.feed_frame(TEXT, b"\xc3", fin=False)
    conn.feed_frame(CONT, b"\xe2\x82", fin=True)
    assert [f.payload for f in conn.frames] == [b"bad\xff", b"\xc3", b"\xe2\x82"]
    assert [int(f.msg_type) for f in conn.frames] == [TEXT, TEXT, CONT]
    assert conn.sent() == []
    assert not conn.fake.closing


async def test_valid_text_large_multibyte(conn):
    text = ("日本語テキスト😀" * 5000).encode()
    conn.feed_frame(TEXT, text)
    assert [f.payload for f in conn.frames] == [text]
    assert [f.msg_type for f in conn.frames] == [WSMsgType.TEXT]


# --------------------------------------------------------------------------
# Failing the connection closes the transport (docs/internals.md, "Close and
# error path": send CLOSE, log, close the transport) without the peer's help.


def violation_bytes(conn, kind):
    if kind == "rsv1":
        return conn.peer_frame(BINARY, b"x", rsv=RSV1)
    if kind == "opcode-3":
        return conn.peer_frame(3, b"")
    if kind == "mask-bit":
        return build_frame(TEXT, b"x", mask=None if not conn.is_client else b"\x01\x02\x03\x04")
    if kind == "invalid-utf8":
        return conn.peer_frame(TEXT, b"\xff")
    if kind == "too-big":
        return conn.peer_header(BINARY, 10 * MiB + 1)[0]
    if kind == "bad-close-code":
        return conn.peer_frame(CLOSE, close_payload(1005))
    raise AssertionError(kind)


VIOLATIONS = {"rsv1": 1002, "opcode-3": 1002, "mask-bit": 1002, "invalid-utf8": 1007,
              "too-big": 1009, "bad-close-code": 1002}


@pytest.mark.parametrize("kind", VIOLATIONS)
async def test_failure_closes_transport_at_once_when_no_half_close(make_conn, role, kind):
    """A transport that cannot half-close (TLS) is closed right after the CLOSE;
    the default close_timeout (5 s) is not what ends it."""
    conn = await make_conn(role)
    conn.feed(violation_bytes(conn, kind))
    assert [c.close_code for c in conn.sent_closes()] == [VIOLATIONS[kind]]
    assert conn.fake.closing
    await conn.fake.wait_lost(timeout=1.0)
    await conn.wait_disconnected()


@pytest.mark.parametrize("kind", VIOLATIONS)
@pytest.mark.parametrize("peer", ["close-frame", "eof", "nothing"])
async def test_failure_with_half_close(make_conn, role, kind, peer):
    """On plain TCP the CLOSE is followed at once by a FIN (write_eof) or a
    full close; the connection ends on the peer's CLOSE, its EOF, or after
    close_timeout when the peer does nothing."""
    conn = await make_conn(role, eof_capable=True, close_timeout=0.05 if peer == "nothing" else 30)
    conn.feed(violation_bytes(conn, kind))
    assert [c.close_code for c in conn.sent_closes()] == [VIOLATIONS[kind]]
    assert conn.fake.eof_written or conn.fake.closing, "our side must be shut at once"
    if not conn.fake.closing:
        if peer == "close-frame":
            conn.feed(conn.peer_frame(CLOSE, close_payload(VIOLATIONS[kind])))
            if conn.is_client and not conn.fake.closing:
                conn.fake.peer_close()  # the server closes TCP
        elif peer == "eof":
            conn.fake.peer_eof()
    await conn.wait_closed()
    assert [c.close_code for c in conn.sent_closes()] == [VIOLATIONS[kind]]


@pytest.mark.parametrize("kind", VIOLATIONS)
async def test_failure_ends_within_close_timeout(make_conn, role, kind):
    conn = await make_conn(role, close_timeout=0.05)
    conn.feed(violation_bytes(conn, kind))
    assert [c.close_code for c in conn.sent_closes()] == [VIOLATIONS[kind]]
    await conn.wait_closed()


@pytest.mark.parametrize("kind", ["rsv1", "invalid-utf8"])
async def test_failed_connection_delivers_nothing_more(make_conn, role, kind):
    """While waiting for the peer's CLOSE, frames are read but not delivered."""
    conn = await make_conn(role, eof_capable=True, close_timeout=30)
    conn.feed(conn.peer_frame(TEXT, b"before"))
    conn.feed(violation_bytes(conn, kind))
    conn.feed(conn.peer_frame(TEXT, b"after") + conn.peer_frame(PING, b"ping"))
    assert [f.payload for f in conn.frames] == [b"before"]
    assert [f.opcode for f in conn.sent()] == [CLOSE], "nothing may follow our CLOSE"
    conn.fake.peer_close()
    await conn.wait_disconnected()

"""permessage-deflate negotiation (RFC 7692 5 and 7.1): picows.handshake
directly, then through WSProtocol on a fake transport, both roles."""
from __future__ import annotations

import asyncio

import pytest

from picows import WSError
from picows.handshake import (
    DEFLATE_OFFER,
    build_upgrade_request,
    negotiate_deflate,
    parse_deflate_response,
    parse_upgrade_request,
    parse_upgrade_response,
)
from picows.types import WSHandshakeError

from tests.support import (CLIENT_KEY, RSV1, SERVER_KEY, TEXT, WAIT, build_frame, decode_frames,
    feed, head_headers, start_protocol, switching_response, upgrade_request)


PMD = "permessage-deflate"


def parse_extension(value: str) -> tuple[str, dict[str, str | None]]:
    """One extension of a Sec-WebSocket-Extensions value (RFC 6455 9.1),
    written here independently of picows: (name, {param: value or None})."""
    assert "," not in value, f"more than one extension: {value!r}"
    name, *params = [p.strip() for p in value.split(";")]
    out: dict[str, str | None] = {}
    for p in params:
        k, eq, v = p.partition("=")
        assert k.strip() not in out, f"duplicate parameter in {value!r}"
        out[k.strip()] = v.strip().strip('"') if eq else None
    return name, out


def server_params(value: str) -> dict[str, str | None]:
    """The response's parameters that describe the server's compressor.

    A server may also echo client_no_context_takeover (RFC 7692 7.1.1.2);
    whether it does is its choice, so it is left out of comparisons."""
    name, params = parse_extension(value)
    assert name == PMD
    params.pop("client_no_context_takeover", None)
    return params


# --------------------------------------------------------------------------
# Server side: negotiate_deflate(offer header)


@pytest.mark.parametrize("header", [None, "", "x-webkit-deflate-frame", "foo, bar; baz=1"])
def test_no_deflate_offer_gives_none(header):
    assert negotiate_deflate(header) is None


@pytest.mark.parametrize("offer, nct, bits, response", [
    (PMD, False, 15, {}),
    (f"{PMD}; client_max_window_bits", False, 15, {}),
    (f"{PMD}; client_max_window_bits=8", False, 15, {}),
    (f"{PMD}; client_max_window_bits=15", False, 15, {}),
    (f"{PMD}; client_no_context_takeover", False, 15, {}),
    (f"{PMD}; server_no_context_takeover", True, 15,
     {"server_no_context_takeover": None}),
    (f"{PMD}; server_max_window_bits=10", False, 10, {"server_max_window_bits": "10"}),
    (f'{PMD}; server_max_window_bits="12"', False, 12, {"server_max_window_bits": "12"}),
    (f"{PMD}; server_no_context_takeover; client_no_context_takeover; "
     f"server_max_window_bits=9; client_max_window_bits=11", True, 9,
     {"server_no_context_takeover": None, "server_max_window_bits": "9"}),
    (f"{PMD};server_no_context_takeover;client_max_window_bits", True, 15,
     {"server_no_context_takeover": None}),
    (f"  {PMD} ;  server_max_window_bits = 11 ", False, 11, {"server_max_window_bits": "11"}),
    (DEFLATE_OFFER, False, 15, {}),
], ids=["bare", "cmwb", "cmwb-8", "cmwb-15", "cnct", "snct", "smwb-10", "smwb-quoted",
        "all-four", "no-spaces", "extra-spaces", "picows-offer"])
def test_offer_accepted(offer, nct, bits, response):
    params = negotiate_deflate(offer)
    assert params is not None
    assert params.local_no_context_takeover is nct
    assert params.local_max_window_bits == bits
    assert server_params(params.header) == response


@pytest.mark.parametrize("bits", range(8, 16))
def test_server_max_window_bits_echoed(bits):
    params = negotiate_deflate(f"{PMD}; server_max_window_bits={bits}")
    assert params is not None
    assert params.local_max_window_bits == bits
    echoed = server_params(params.header).get("server_max_window_bits")
    # RFC 7692 7.1.2.1: MUST echo a value below the default 15, MAY echo 15.
    if bits < 15:
        assert echoed == str(bits)
    else:
        assert echoed in (None, "15")


@pytest.mark.parametrize("offer", [
    f"{PMD}; foo",
    f"{PMD}; foo=1",
    f"{PMD}; server_no_context_takeover; server_no_context_takeover",
    f"{PMD}; client_no_context_takeover; client_no_context_takeover",
    f"{PMD}; server_max_window_bits=10; server_max_window_bits=10",
    f"{PMD}; client_max_window_bits; client_max_window_bits=10",
    f"{PMD}; server_no_context_takeover=1",
    f"{PMD}; client_no_context_takeover=yes",
    f"{PMD}; server_max_window_bits",
    f"{PMD}; server_max_window_bits=",
    f"{PMD}; server_max_window_bits=7",
    f"{PMD}; server_max_window_bits=16",
    f"{PMD}; server_max_window_bits=0",
    f"{PMD}; server_max_window_bits=-9",
    f"{PMD}; server_max_window_bits=abc",
    f"{PMD}; server_max_window_bits=1.0",
    f"{PMD}; server_max_window_bits=100",
    f"{PMD}; client_max_window_bits=7",
    f"{PMD}; client_max_window_bits=16",
    f"{PMD}; client_max_window_bits=x",
    f"{PMD}; client_max_window_bits=",
    # RFC 7692 7.1.2.1 / 7.1.2.2: "a decimal integer value without leading
    # zeroes between 8 to 15".
    f"{PMD}; server_max_window_bits=09",
    f"{PMD}; client_max_window_bits=010",
    # Latin-1 header bytes that str.isdigit() calls digits but int() rejects.
    f"{PMD}; server_max_window_bits=1\u00b2",
    f"{PMD}; client_max_window_bits=\u00b9\u00b2",
], ids=lambda s: s[len(PMD) + 2:] or "empty")
def test_invalid_offer_declined(offer):
    assert negotiate_deflate(offer) is None
    # ...and the next offer in the list is tried (RFC 7692 5).
    params = negotiate_deflate(f"{offer}, {PMD}; server_no_context_takeover")
    assert params is not None
    assert params.local_no_context_takeover is True
    assert server_params(params.header) == {"server_no_context_takeover": None}


def test_first_acceptable_offer_wins():
    header = (f"x-webkit-deflate-frame, {PMD}; server_max_window_bits=10, "
              f"{PMD}; server_no_context_takeover")
    params = negotiate_deflate(header)
    assert params is not None
    assert params.local_max_window_bits == 10
    assert params.local_no_context_takeover is False
    assert server_params(params.header) == {"server_max_window_bits": "10"}


def test_offers_on_separate_header_lines():
    raw = upgrade_request(SERVER_KEY, extra=(
        b"Sec-WebSocket-Extensions: permessage-deflate; bogus\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=11\r\n"))
    request = parse_upgrade_request(raw)
    # Repeated headers are kept apart (getall); RFC 7230 3.2.2 joins them.
    params = negotiate_deflate(", ".join(request.headers.getall("sec-websocket-extensions")))
    assert params is not None
    assert params.local_max_window_bits == 11


def test_all_offers_invalid_gives_none():
    assert negotiate_deflate(f"{PMD}; foo, {PMD}; server_max_window_bits=7, x-other") is None


# --------------------------------------------------------------------------
# Client side: parse_deflate_response(response header)


@pytest.mark.parametrize("response, nct, bits", [
    (PMD, False, 15),
    (f"{PMD}; server_no_context_takeover", False, 15),
    (f"{PMD}; client_no_context_takeover", True, 15),
    (f"{PMD}; server_max_window_bits=9", False, 15),
    (f"{PMD}; client_max_window_bits=10", False, 10),
    (f"{PMD}; client_max_window_bits=8", False, 8),
    (f'{PMD}; client_max_window_bits="12"', False, 12),
    (f"{PMD}; server_no_context_takeover; client_no_context_takeover; "
     f"server_max_window_bits=12; client_max_window_bits=13", True, 13),
], ids=["bare", "snct", "cnct", "smwb", "cmwb-10", "cmwb-8", "cmwb-quoted", "all-four"])
def test_response_accepted(response, nct, bits):
    params = parse_deflate_response(response)
    assert params.local_no_context_takeover is nct
    assert params.local_max_window_bits == bits
    assert params.header == response


@pytest.mark.parametrize("response", [
    "x-webkit-deflate-frame",
    f"{PMD}, {PMD}",
    f"{PMD}, x-other",
    f"x-other, {PMD}",
    f"{PMD}; foo",
    f"{PMD}; foo=bar",
    f"{PMD}; server_no_context_takeover; server_no_context_takeover",
    f"{PMD}; client_max_window_bits=10; client_max_window_bits=10",
    f"{PMD}; server_no_context_takeover=1",
    f"{PMD}; client_no_context_takeover=1",
    f"{PMD}; server_max_window_bits",
    f"{PMD}; server_max_window_bits=7",
    f"{PMD}; server_max_window_bits=16",
    f"{PMD}; server_max_window_bits=x",
    # A response must give client_max_window_bits a value (RFC 7692 7.1.2.2).
    f"{PMD}; client_max_window_bits",
    f"{PMD}; client_max_window_bits=7",
    f"{PMD}; client_max_window_bits=16",
    f"{PMD}; client_max_window_bits=09",
    f"{PMD}; server_max_window_bits=1\u00b2",
], ids=lambda s: s)
def test_invalid_response_rejected(response):
    with pytest.raises(WSHandshakeError):
        parse_deflate_response(response)


def response_head(extensions: str | None) -> bytes:
    extra = b"" if extensions is None else (
        b"Sec-WebSocket-Extensions: " + extensions.encode("latin-1") + b"\r\n")
    return switching_response(CLIENT_KEY, extra=extra)


def test_extension_not_offered_rejected_by_parse_upgrade_response():
    with pytest.raises(WSHandshakeError):
        parse_upgrade_response(response_head(PMD), CLIENT_KEY)
    with pytest.raises(WSHandshakeError):
        parse_upgrade_response(response_head(PMD), CLIENT_KEY, deflate_offered=False)


def test_extension_offered_accepted_by_parse_upgrade_response():
    response = parse_upgrade_response(response_head(PMD), CLIENT_KEY, deflate_offered=True)
    assert response.headers["sec-websocket-extensions"] == PMD
    # Offered but not taken: the connection goes on without compression.
    response = parse_upgrade_response(response_head(None), CLIENT_KEY, deflate_offered=True)
    assert "sec-websocket-extensions" not in response.headers


def test_picows_offer_is_a_valid_offer():
    name, params = parse_extension(DEFLATE_OFFER)
    assert name == PMD
    assert set(params) <= {"server_no_context_takeover", "client_no_context_takeover",
                           "server_max_window_bits", "client_max_window_bits"}


# --------------------------------------------------------------------------
# Through WSProtocol: server role


def serve_one(offer: bytes | None, **kwargs):
    """A server-role protocol fed an upgrade request with ``offer``."""
    proto, fake, listener = start_protocol(False, **kwargs)
    extra = b"" if offer is None else b"Sec-WebSocket-Extensions: " + offer + b"\r\n"
    feed(proto, upgrade_request(SERVER_KEY, extra=extra))
    return proto, fake, listener


async def finish(fake, listener) -> None:
    fake.peer_close()
    await listener.wait_disconnected(WAIT)
    assert listener.disconnected_calls == 1


@pytest.mark.parametrize("offer, response", [
    (b"permessage-deflate", {}),
    (DEFLATE_OFFER.encode(), {}),
    (b"permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
     {"server_no_context_takeover": None, "server_max_window_bits": "10"}),
    (b"permessage-deflate; foo, permessage-deflate; server_max_window_bits=12",
     {"server_max_window_bits": "12"}),
], ids=["bare", "picows-offer", "snct-smwb", "second-offer"])
async def test_server_accepts_offer_in_101(offer, response):
    proto, fake, listener = serve_one(offer, enable_compression=True)
    status, headers = head_headers(fake.data())
    assert status.startswith(b"HTTP/1.1 101 ")
    assert server_params(headers["sec-websocket-extensions"]) == response
    assert proto.transport.extensions == headers["sec-websocket-extensions"]
    await finish(fake, listener)


@pytest.mark.parametrize("offer, enabled", [
    (None, True),
    (b"x-webkit-deflate-frame", True),
    (b"permessage-deflate; foo", True),
    (b"permessage-deflate; server_max_window_bits=7, permessage-deflate; x=1", True),
    (b"permessage-deflate; server_max_window_bits=1\xb2", True),
    (b"permessage-deflate", False),
], ids=["no-offer", "other-extension", "unknown-param", "all-invalid", "superscript-digit",
        "compression-disabled"])
async def test_server_without_agreement_goes_on_uncompressed(offer, enabled):
    proto, fake, listener = serve_one(offer, enable_compression=enabled)
    status, headers = head_headers(fake.data())
    assert status.startswith(b"HTTP/1.1 101 ")
    assert "sec-websocket-extensions" not in headers
    assert proto.transport.extensions is None
    mark = len(fake.data())
    # The connection works, uncompressed...
    feed(proto, build_frame(TEXT, b"plain", mask=b"\x01\x02\x03\x04"))
    assert [(f.payload, f.rsv1) for f in listener.frames] == [(b"plain", False)]
    proto.transport.send(TEXT, b"reply")
    assert [(f.rsv, f.payload) for f in decode_frames(fake.data()[mark:])] == [(0, b"reply")]
    # ...and RSV1 stays a protocol error (RFC 6455 5.2).
    feed(proto, build_frame(TEXT, b"\x00", rsv=RSV1, mask=b"\x01\x02\x03\x04"))
    closes = [f for f in decode_frames(fake.data()[mark:]) if f.opcode == 0x8]
    assert [c.close_code for c in closes] == [1002]
    await finish(fake, listener)


# --------------------------------------------------------------------------
# Through WSProtocol: client role


def connect_one(offer: bool, **kwargs):
    extra = [("Sec-WebSocket-Extensions", DEFLATE_OFFER)] if offer else None
    request = build_upgrade_request("example.com", "/ws", CLIENT_KEY, extra)
    proto, fake, listener = start_protocol(True, upgrade_request=request, **kwargs)
    assert fake.data() == request
    return proto, fake, listener


@pytest.mark.parametrize("response", [
    PMD,
    f"{PMD}; client_no_context_takeover",
    f"{PMD}; server_no_context_takeover; server_max_window_bits=9",
    f"{PMD}; client_max_window_bits=8",
])
async def test_client_accepts_valid_response(response):
    proto, fake, listener = connect_one(True, enable_compression=True)
    feed(proto, response_head(response))
    ws, _ = await asyncio.wait_for(proto.handshake_future, WAIT)
    assert ws.extensions == response
    await finish(fake, listener)


async def test_client_without_agreement_goes_on_uncompressed():
    proto, fake, listener = connect_one(True, enable_compression=True)
    feed(proto, response_head(None))
    ws, _ = await asyncio.wait_for(proto.handshake_future, WAIT)
    assert ws.extensions is None
    mark = len(fake.data())
    ws.send(TEXT, b"plain")
    assert [(f.rsv, f.payload) for f in decode_frames(fake.data()[mark:])] == [(0, b"plain")]
    await finish(fake, listener)


@pytest.mark.parametrize("offer, enabled, response", [
    (True, True, "x-webkit-deflate-frame"),
    (True, True, f"{PMD}; foo"),
    (True, True, f"{PMD}; server_no_context_takeover; server_no_context_takeover"),
    (True, True, f"{PMD}; server_max_window_bits=16"),
    (True, True, f"{PMD}; client_max_window_bits"),
    (True, True, f"{PMD}, {PMD}"),
    (True, True, f"{PMD}; server_max_window_bits=1\u00b2"),
    # The server answers an extension although compression is off.
    (False, False, PMD),
], ids=["other-extension", "unknown-param", "duplicate", "bits-16", "cmwb-no-value",
        "twice", "superscript-digit", "not-offered"])
async def test_client_bad_response_fails_handshake(offer, enabled, response):
    proto, fake, listener = connect_one(offer, enable_compression=enabled)
    feed(proto, response_head(response))
    with pytest.raises(WSError):
        await asyncio.wait_for(proto.handshake_future, WAIT)
    await fake.wait_lost()
    assert listener.connected_calls == 0

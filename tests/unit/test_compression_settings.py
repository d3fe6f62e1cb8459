"""WSCompression: its checks, the client's offer, and how each side's
settings shape the agreement (RFC 7692 7.1), from picows.compression
directly."""
from __future__ import annotations

import pytest

from picows import WSCompression, WSInvalidHeaderError
from picows.compression import (DEFLATE_OFFER, as_compression, negotiate_deflate,
                                parse_deflate_response)
from picows.picows import _ConnectionOptions


PMD = "permessage-deflate"


def params_of(value: str) -> dict[str, str | None]:
    """The parameters of one extension value, parsed here independently."""
    name, *params = [p.strip() for p in value.split(";")]
    assert name == PMD
    out: dict[str, str | None] = {}
    for p in params:
        k, eq, v = p.partition("=")
        out[k] = v if eq else None
    return out


# -- settings -----------------------------------------------------------------

def test_defaults():
    c = WSCompression()
    assert (c.level, c.mem_level, c.client_max_window_bits, c.server_max_window_bits,
            c.client_no_context_takeover, c.server_no_context_takeover, c.min_size,
            c.backend) == (1, 8, None, None, False, False, 0, "auto")
    assert c == WSCompression() and hash(c) == hash(WSCompression())
    assert c != WSCompression(level=6)
    assert "level=1" in repr(c)


@pytest.mark.parametrize("kwargs", [
    dict(level=10), dict(level=-2), dict(level=1.0), dict(level=True),
    dict(mem_level=0), dict(mem_level=10),
    dict(client_max_window_bits=7), dict(client_max_window_bits=16),
    dict(server_max_window_bits=7), dict(server_max_window_bits="12"),
    dict(min_size=-1), dict(min_size=None),
    dict(backend="zstd"),
], ids=repr)
def test_bad_settings_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        WSCompression(**kwargs)


def test_settings_are_keyword_only():
    with pytest.raises(TypeError):
        WSCompression(6)  # type: ignore[misc]


def test_isal_backend_needs_isal(monkeypatch):
    import picows.compression as compression
    monkeypatch.setattr(compression, "_isal_zlib", lambda: None)
    with pytest.raises(ValueError, match="isal"):
        WSCompression(backend="isal")
    assert WSCompression(backend="auto").backend == "auto"


@pytest.mark.parametrize("value, expected", [
    (False, None), (None, None), (0, None), (True, WSCompression()), (1, WSCompression()),
    (WSCompression(level=9), WSCompression(level=9)),
])
def test_enable_compression_values(value, expected):
    assert as_compression(value) == expected
    options = _ConnectionOptions(lambda: None, enable_compression=value)
    assert options.compression == expected
    assert options.enable_compression is (expected is not None)


@pytest.mark.parametrize("value", ["deflate", 2.5, object()])
def test_enable_compression_bad_type(value):
    with pytest.raises(TypeError, match="enable_compression"):
        _ConnectionOptions(lambda: None, enable_compression=value)


# -- the client's offer --------------------------------------------------------

def test_default_offer_is_unchanged():
    assert WSCompression().offer() == DEFLATE_OFFER == f"{PMD}; client_max_window_bits"


def test_offer_with_everything():
    offer = WSCompression(client_max_window_bits=10, server_max_window_bits=9,
                          client_no_context_takeover=True,
                          server_no_context_takeover=True).offer()
    assert params_of(offer) == {"client_max_window_bits": "10", "server_max_window_bits": "9",
                                "client_no_context_takeover": None,
                                "server_no_context_takeover": None}
    # What a picows server makes of it.
    agreed = negotiate_deflate(offer)
    assert params_of(agreed.header) == {"server_no_context_takeover": None,
                                        "server_max_window_bits": "9",
                                        "client_no_context_takeover": None}
    assert (agreed.local_no_context_takeover, agreed.local_max_window_bits) == (True, 9)


# -- the server's settings -----------------------------------------------------

def test_server_grants_no_context_takeover_unasked():
    """RFC 7692 7.1.1.1: a server may use no context takeover on its own;
    that is what lets broadcast() compress once."""
    agreed = negotiate_deflate(DEFLATE_OFFER, WSCompression(server_no_context_takeover=True))
    assert params_of(agreed.header) == {"server_no_context_takeover": None}
    assert agreed.local_no_context_takeover is True
    client = parse_deflate_response(agreed.header)
    assert client.local_no_context_takeover is False


def test_server_window_limit_unasked_and_asked():
    ours = WSCompression(server_max_window_bits=11)
    agreed = negotiate_deflate(PMD, ours)
    assert params_of(agreed.header) == {"server_max_window_bits": "11"}
    assert agreed.local_max_window_bits == 11
    # The client asked for less: the smaller wins.
    agreed = negotiate_deflate(f"{PMD}; server_max_window_bits=9", ours)
    assert params_of(agreed.header) == {"server_max_window_bits": "9"}
    # The client asked for more: ours, which is "the same or smaller".
    agreed = negotiate_deflate(f"{PMD}; server_max_window_bits=13", ours)
    assert params_of(agreed.header) == {"server_max_window_bits": "11"}
    # The client's side sees the window the server keeps to.
    assert parse_deflate_response(agreed.header).remote_max_window_bits == 11


def test_server_asks_client_window_only_when_offered():
    """RFC 7692 7.1.2.2: client_max_window_bits may only be answered to an
    offer that has it; then the server inflates with that window."""
    ours = WSCompression(client_max_window_bits=10)
    agreed = negotiate_deflate(DEFLATE_OFFER, ours)
    assert params_of(agreed.header) == {"client_max_window_bits": "10"}
    assert agreed.remote_max_window_bits == 10
    agreed = negotiate_deflate(f"{PMD}; client_max_window_bits=9", ours)
    assert params_of(agreed.header) == {"client_max_window_bits": "9"}
    assert agreed.remote_max_window_bits == 9
    agreed = negotiate_deflate(PMD, ours)
    assert params_of(agreed.header) == {}
    assert agreed.remote_max_window_bits == 15


def test_server_asks_client_no_context_takeover():
    agreed = negotiate_deflate(DEFLATE_OFFER, WSCompression(client_no_context_takeover=True))
    assert params_of(agreed.header) == {"client_no_context_takeover": None}
    assert parse_deflate_response(agreed.header).local_no_context_takeover is True


def test_settings_travel_with_the_agreement():
    ours = WSCompression(level=9, min_size=100)
    assert negotiate_deflate(DEFLATE_OFFER, ours).settings is ours
    assert parse_deflate_response(PMD, ours).settings is ours


# -- the client's settings -----------------------------------------------------

def test_client_keeps_its_own_limits():
    ours = WSCompression(client_max_window_bits=11, client_no_context_takeover=True)
    agreed = parse_deflate_response(PMD, ours)
    assert (agreed.local_max_window_bits, agreed.local_no_context_takeover) == (11, True)
    agreed = parse_deflate_response(f"{PMD}; client_max_window_bits=9", ours)
    assert agreed.local_max_window_bits == 9
    # A server answering a larger value cannot make us use more.
    agreed = parse_deflate_response(f"{PMD}; client_max_window_bits=13", ours)
    assert agreed.local_max_window_bits == 11


@pytest.mark.parametrize("response, why", [
    (PMD, "server_no_context_takeover"),
    (f"{PMD}; server_max_window_bits=10", "server_no_context_takeover"),
], ids=["ignored", "only-window"])
def test_client_fails_when_server_ignores_no_context_takeover(response, why):
    ours = WSCompression(server_no_context_takeover=True)
    with pytest.raises(WSInvalidHeaderError, match=why):
        parse_deflate_response(response, ours)
    assert parse_deflate_response(f"{PMD}; server_no_context_takeover",
                                  ours).remote_max_window_bits == 15


@pytest.mark.parametrize("response", [PMD, f"{PMD}; server_max_window_bits=11"],
                         ids=["missing", "larger"])
def test_client_fails_when_server_ignores_window(response):
    ours = WSCompression(server_max_window_bits=10)
    with pytest.raises(WSInvalidHeaderError, match="server_max_window_bits=10"):
        parse_deflate_response(response, ours)
    agreed = parse_deflate_response(f"{PMD}; server_max_window_bits=9", ours)
    assert agreed.remote_max_window_bits == 9

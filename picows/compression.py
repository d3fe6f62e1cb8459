"""permessage-deflate (RFC 7692): the settings users choose and the
negotiation of both sides.

Plain Python: this runs once per connection. What it agrees on
(:class:`DeflateParams`) is handed to the Cython ``_PerMessageDeflate``,
which owns the zlib streams from then on.

Parameter names are the RFC's, so one :class:`WSCompression` means the same
on both sides: ``client_*`` are about what the client compresses,
``server_*`` about what the server compresses.
"""
from __future__ import annotations

import functools
import re
from typing import Any, List, Optional, Tuple

from .types import WSInvalidHeaderError

__all__ = ["WSCompression", "DeflateParams", "DEFLATE_OFFER", "negotiate_deflate",
           "parse_deflate_response"]

_BACKENDS = ("auto", "zlib", "isal")


def _check_bits(name: str, value: Optional[int]) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 8 <= value <= 15:
        raise ValueError(f"{name} must be None or an int from 8 to 15, got {value!r}")
    return value


def _check_int(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an int from {low} to {high}, got {value!r}")
    return value


class WSCompression:
    """permessage-deflate settings, for ``enable_compression`` of
    :any:`ws_connect` and :any:`ws_create_server`.

    ``enable_compression=True`` is ``WSCompression()``. On the client the
    ``*_max_window_bits`` and ``*_no_context_takeover`` settings are put in
    the offer; on the server they shape the answer to a client's offer (RFC
    7692 7.1). The server's answer binds both sides; a server that does not
    honour what the client asked for fails the handshake
    (:any:`WSInvalidHeaderError`).

    :param level: zlib compression level, 0 (store) to 9 (smallest), or -1
        for zlib's default (6). The default 1 (fastest) was chosen by
        measurement: on 2 KiB JSON messages level 6 costs about three times
        the CPU of level 1 for 18% fewer bytes (docs/compression.md).
    :param mem_level: zlib's memLevel, 1 to 9: memory of the compressor's
        hash table (``2 ** (mem_level + 9)`` bytes) against speed and ratio.
    :param client_max_window_bits: the largest LZ77 window the client may
        compress with, 8 to 15 (``2 ** bits`` bytes of history, and of
        memory on both ends). Client: offered, and our compressor keeps to
        it. Server: asks the client for it when the client's offer allows
        (it includes ``client_max_window_bits``); then our decompressor
        needs only that window.
    :param server_max_window_bits: the same for what the server sends.
        Client: offered; the server must agree to it or the handshake
        fails. Server: our compressor keeps to it, and says so.
    :param client_no_context_takeover: the client starts every message
        with an empty window (no references to earlier messages: a worse
        ratio, no memory of the past needed). Client: offered, and kept.
        Server: asks the client for it.
    :param server_no_context_takeover: the same for what the server sends.
        Client: offered; the server must agree or the handshake fails.
        Server: granted even when the client did not ask (RFC 7692
        7.1.1.1). With it, :any:`picows.broadcast` compresses a message
        once for every such connection instead of once per connection.
    :param min_size: messages shorter than this many bytes are sent
        uncompressed (compressing a few bytes costs more than it saves).
        0 (the default): every message is compressed.
    :param backend: which deflate compressor makes what we send: ``"zlib"``
        (zlib, driven from Cython), ``"isal"`` (Intel ISA-L through the
        ``isal`` package from PyPI: the same format, about twice as fast
        with a slightly better ratio at the fast levels), or ``"auto"``
        (the default: ``isal`` when it is installed, else ``zlib``). With
        ``isal``, levels 1-3 map to its level 1, 4-6 to 2 and 7-9 to 3;
        level 0 and 8-bit windows always use zlib. Received messages are
        always inflated by zlib.
    :raises ValueError: for a value out of its range, or ``backend="isal"``
        when the ``isal`` package is not installed.
    """

    __slots__ = ("level", "mem_level", "client_max_window_bits", "server_max_window_bits",
                 "client_no_context_takeover", "server_no_context_takeover", "min_size",
                 "backend")

    def __init__(self, *, level: int = 1, mem_level: int = 8,
                 client_max_window_bits: Optional[int] = None,
                 server_max_window_bits: Optional[int] = None,
                 client_no_context_takeover: bool = False,
                 server_no_context_takeover: bool = False,
                 min_size: int = 0,
                 backend: str = "auto") -> None:
        self.level = _check_int("level", level, -1, 9)
        self.mem_level = _check_int("mem_level", mem_level, 1, 9)
        self.client_max_window_bits = _check_bits("client_max_window_bits",
                                                  client_max_window_bits)
        self.server_max_window_bits = _check_bits("server_max_window_bits",
                                                  server_max_window_bits)
        self.client_no_context_takeover = bool(client_no_context_takeover)
        self.server_no_context_takeover = bool(server_no_context_takeover)
        self.min_size = _check_int("min_size", min_size, 0, 2 ** 62)
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(_BACKENDS)}, got {backend!r}")
        if backend == "isal" and _isal_zlib() is None:
            raise ValueError("backend='isal' needs the isal package (pip install isal)")
        self.backend = backend

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"WSCompression({fields})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WSCompression):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in self.__slots__))

    def offer(self) -> str:
        """The client's Sec-WebSocket-Extensions offer for these settings."""
        parts = ["permessage-deflate"]
        # Always offered: it tells the server we can keep to a smaller window.
        parts.append("client_max_window_bits" if self.client_max_window_bits is None
                     else f"client_max_window_bits={self.client_max_window_bits}")
        if self.server_max_window_bits is not None:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        return "; ".join(parts)


@functools.lru_cache(maxsize=None)
def _isal_zlib() -> Any:
    """isal's zlib-like module, or None when the package is not installed
    (looked for once: a failed import searches sys.path every time)."""
    try:
        from isal import isal_zlib  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    return isal_zlib


DEFAULT = WSCompression()

#: What a picows client offers with ``enable_compression=True``.
DEFLATE_OFFER = DEFAULT.offer()


def as_compression(value: object) -> Optional[WSCompression]:
    """``enable_compression``'s value as settings: None when off."""
    if isinstance(value, WSCompression):
        return value
    if value is True or value == 1:
        return DEFAULT
    if value is False or value is None or value == 0:
        return None
    raise TypeError(f"enable_compression must be a bool or a WSCompression, "
                    f"not {type(value).__name__}")


class DeflateParams:
    """The agreed permessage-deflate parameters, from our point of view.

    :ivar local_no_context_takeover: we reset our compressor after each message.
    :ivar local_max_window_bits: the largest LZ77 window our compressor may use.
    :ivar remote_max_window_bits: the largest window the peer compresses
        with (our decompressor's window).
    :ivar header: the Sec-WebSocket-Extensions value that was agreed.
    :ivar settings: the :class:`WSCompression` of our side.
    """

    __slots__ = ("local_no_context_takeover", "local_max_window_bits",
                 "remote_max_window_bits", "header", "settings")

    def __init__(self, local_no_context_takeover: bool, local_max_window_bits: int,
                 header: str, remote_max_window_bits: int = 15,
                 settings: Optional[WSCompression] = None) -> None:
        self.local_no_context_takeover = local_no_context_takeover
        self.local_max_window_bits = local_max_window_bits
        self.remote_max_window_bits = remote_max_window_bits
        self.header = header
        self.settings = settings if settings is not None else DEFAULT

    def __repr__(self) -> str:
        return (f"DeflateParams(local_no_context_takeover={self.local_no_context_takeover}, "
                f"local_max_window_bits={self.local_max_window_bits}, "
                f"remote_max_window_bits={self.remote_max_window_bits}, "
                f"header={self.header!r})")


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


class _Offer:
    """One client offer, its parameters checked (RFC 7692 7.1)."""

    __slots__ = ("server_nct", "client_nct", "server_bits", "client_bits", "client_bits_ok")

    def __init__(self) -> None:
        self.server_nct = False
        self.client_nct = False
        self.server_bits: Optional[int] = None   # server_max_window_bits=N offered
        self.client_bits: Optional[int] = None   # client_max_window_bits=N offered
        self.client_bits_ok = False              # client_max_window_bits offered at all


def _read_offer(params: List[Tuple[str, Optional[str]]]) -> Optional[_Offer]:
    """An offer's parameters, or None when the offer is not acceptable
    (an unknown or repeated parameter, or a bad value)."""
    offer = _Offer()
    seen = set()
    for key, value in params:
        if key in seen:
            return None
        seen.add(key)
        if key == "server_no_context_takeover" and value is None:
            offer.server_nct = True
        elif key == "client_no_context_takeover" and value is None:
            offer.client_nct = True
        elif key == "server_max_window_bits":
            offer.server_bits = _window_bits(value)
            if offer.server_bits is None:
                return None
        elif key == "client_max_window_bits":
            if value is not None:
                offer.client_bits = _window_bits(value)
                if offer.client_bits is None:
                    return None
            offer.client_bits_ok = True
        else:
            return None
    return offer


def negotiate_deflate(header: Optional[str],
                      settings: Optional[WSCompression] = None) -> Optional[DeflateParams]:
    """Server side: accept the first valid permessage-deflate offer.

    :param header: the request's Sec-WebSocket-Extensions value, or None.
    :param settings: the server's :class:`WSCompression` (default: the
        defaults).
    :return: the agreed parameters (``header`` is the response value), or
        None when no offer is acceptable (the connection goes on without
        compression, RFC 7692 5).
    """
    if not header:
        return None
    ours = settings if settings is not None else DEFAULT
    for name, params in _parse_extensions(header):
        if name != "permessage-deflate":
            continue
        offer = _read_offer(params)
        if offer is None:
            continue
        response = ["permessage-deflate"]
        # What we send (RFC 7692 7.1.1.1, 7.1.2.1): our own limits count even
        # when the client did not ask for any.
        server_nct = offer.server_nct or ours.server_no_context_takeover
        if server_nct:
            response.append("server_no_context_takeover")
        server_bits = min(offer.server_bits or 15, ours.server_max_window_bits or 15)
        if offer.server_bits is not None or server_bits != 15:
            response.append(f"server_max_window_bits={server_bits}")
        # What the client sends (7.1.1.2, 7.1.2.2): a window limit may only
        # be answered to an offer that has client_max_window_bits.
        if offer.client_nct or ours.client_no_context_takeover:
            response.append("client_no_context_takeover")
        client_bits = 15
        if offer.client_bits_ok and ours.client_max_window_bits is not None:
            client_bits = min(offer.client_bits or 15, ours.client_max_window_bits)
            response.append(f"client_max_window_bits={client_bits}")
        return DeflateParams(server_nct, server_bits, "; ".join(response),
                             client_bits, ours)
    return None


def parse_deflate_response(header: str,
                           settings: Optional[WSCompression] = None) -> DeflateParams:
    """Client side: check the server's answer to our offer
    (:meth:`WSCompression.offer`).

    :raises WSInvalidHeaderError: when the server answered with something we
        did not offer, cannot honour, or that ignores what we asked for
        (RFC 7692 5: fail the connection).
    """
    ours = settings if settings is not None else DEFAULT

    def invalid(why: str) -> WSInvalidHeaderError:
        return WSInvalidHeaderError("Sec-WebSocket-Extensions", header, why)

    extensions = _parse_extensions(header)
    if len(extensions) != 1 or extensions[0][0] != "permessage-deflate":
        raise invalid(f"server chose extensions we did not offer: {header!r}")
    seen = set()
    client_nct = ours.client_no_context_takeover
    client_bits = ours.client_max_window_bits or 15
    server_nct = False
    server_bits = None
    for key, value in extensions[0][1]:
        if key in seen:
            raise invalid(f"duplicate permessage-deflate parameter {key}")
        seen.add(key)
        if key == "server_no_context_takeover" and value is None:
            server_nct = True
        elif key == "client_no_context_takeover" and value is None:
            client_nct = True
        elif key == "server_max_window_bits" and _window_bits(value) is not None:
            server_bits = _window_bits(value)
        elif key == "client_max_window_bits" and _window_bits(value) is not None:
            client_bits = min(client_bits, _window_bits(value) or 15)
        else:
            raise invalid(f"invalid permessage-deflate parameter {key}")
    if ours.server_no_context_takeover and not server_nct:
        raise invalid("server did not accept server_no_context_takeover (RFC 7692 7.1.1.1)")
    if ours.server_max_window_bits is not None and (
            server_bits is None or server_bits > ours.server_max_window_bits):
        raise invalid(f"server did not accept server_max_window_bits="
                      f"{ours.server_max_window_bits} (RFC 7692 7.1.2.1)")
    return DeflateParams(client_nct, client_bits, header, server_bits or 15, ours)

"""A websockets-compatible API over picows: change the import, keep the code.

::

    # before                                   # after
    from websockets.asyncio.client import connect   from picows.websockets import connect
    from websockets.asyncio.server import serve     from picows.websockets import serve

The names and behaviour follow the asyncio API of the ``websockets`` package
(version 14 and later); the differences are in docs/websockets-compat.md.
Also importable as ``picows.websockets.asyncio.client``,
``picows.websockets.asyncio.server`` and ``picows.websockets.exceptions``.
"""
from .asyncio.client import ClientConnection, connect, process_exception, unix_connect
from .asyncio.broadcast import broadcast
from .asyncio.connection import Connection, Data
from .asyncio.router import Router, route, unix_route
from .asyncio.server import Server, ServerConnection, basic_auth, serve, unix_serve
from .datastructures import Headers, HeadersLike, MultipleValuesError
from .exceptions import (ConcurrencyError, ConnectionClosed, ConnectionClosedError,
                         ConnectionClosedOK, DuplicateParameter, InvalidHandshake,
                         InvalidHeader, InvalidHeaderFormat, InvalidHeaderValue,
                         InvalidMessage, InvalidOrigin, InvalidParameterName,
                         InvalidParameterValue, InvalidProxy, InvalidProxyMessage,
                         InvalidProxyStatus, InvalidState, InvalidStatus, InvalidUpgrade,
                         InvalidURI, NegotiationError, PayloadTooBig, ProtocolError,
                         ProxyError, SecurityError, WebSocketException)
from .frames import Close, CloseCode, Opcode
from .http11 import Request, Response
from .protocol import Side, State

__all__ = [
    "connect", "unix_connect", "ClientConnection", "process_exception",
    "serve", "unix_serve", "Server", "ServerConnection", "basic_auth", "route", "unix_route",
    "Router", "broadcast",
    "Connection", "Data", "Headers", "HeadersLike", "MultipleValuesError",
    "Close", "CloseCode", "Opcode", "Request", "Response", "Side", "State",
    "ConcurrencyError", "ConnectionClosed", "ConnectionClosedError", "ConnectionClosedOK",
    "DuplicateParameter", "InvalidHandshake", "InvalidHeader", "InvalidHeaderFormat",
    "InvalidHeaderValue", "InvalidMessage", "InvalidOrigin", "InvalidParameterName",
    "InvalidParameterValue", "InvalidProxy", "InvalidProxyMessage", "InvalidProxyStatus",
    "InvalidState", "InvalidStatus", "InvalidUpgrade", "InvalidURI", "NegotiationError",
    "PayloadTooBig", "ProtocolError", "ProxyError", "SecurityError", "WebSocketException",
]

"""The connection state, as websockets.protocol names it, and the
read-only stand-in for websockets' Sans-I/O protocol object
(``connection.protocol``)."""
from __future__ import annotations

import enum
import urllib.parse
from typing import TYPE_CHECKING, Any, List

if TYPE_CHECKING:
    from .asyncio.connection import Connection

__all__ = ["State", "Side", "PerMessageDeflate"]


class State(enum.IntEnum):
    """The state of a WebSocket connection."""
    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


class Side(enum.IntEnum):
    """Which end of the connection."""
    SERVER = 0
    CLIENT = 1


class _ProtocolView:
    """What tests and tools read of websockets' ``connection.protocol``."""

    __slots__ = ("_connection",)

    def __init__(self, connection: "Connection") -> None:
        self._connection = connection

    @property
    def state(self) -> State:
        return self._connection.state

    @property
    def uri(self) -> Any:
        """Client side: the URI connected to, after redirects, split
        (``urllib.parse.urlsplit``: ``scheme``, ``hostname``, ``port``,
        ``path``...); None on the server side."""
        uri = getattr(self._connection, "_uri", None)
        return None if uri is None else urllib.parse.urlsplit(uri)

    @property
    def extensions(self) -> List["PerMessageDeflate"]:
        """The extensions negotiated: ``[PerMessageDeflate(...)]`` or []."""
        ws = self._connection._ws
        if ws is None or ws.extensions is None:
            return []
        return [PerMessageDeflate(ws.extensions)]


class PerMessageDeflate:
    """permessage-deflate, as negotiated (run by picows' core)."""

    name = "permessage-deflate"

    def __init__(self, header: str) -> None:
        self.header = header
        """The agreed Sec-WebSocket-Extensions value."""

    def __repr__(self) -> str:
        return f"PerMessageDeflate({self.header!r})"

"""broadcast(): one message to many connections, websockets' API over
picows' frame-once broadcast (kept out of connection.py, which Cython
compiles; this runs once per broadcast, not per connection)."""
from __future__ import annotations

import builtins
from typing import Dict, Iterable, List, Optional, Union

from ...picows import WSMsgType, WSTransport
from ...picows import broadcast as _core_broadcast
from ..exceptions import ConcurrencyError
from ..protocol import State
from .connection import Connection, DataLike

__all__ = ["broadcast"]

_OPEN = State.OPEN


def broadcast(connections: Iterable[Connection], message: DataLike,
              raise_exceptions: bool = False, text: Optional[bool] = None) -> None:
    """Send `message` to every open connection, without waiting.

    The frame is built once and the same bytes go to every server connection
    (server frames are not masked): picows' :any:`picows.broadcast`; a
    connection that negotiated compression, and a client connection, gets
    its own copy. Skipped: connections that are not open, that are in the
    middle of sending a fragmented message, or (unlike websockets, which
    buffers without bound) whose write buffer is full (``pause_writing``).

    :param raise_exceptions: raise the failures in an ExceptionGroup instead
        of logging them.
    :param text: as in :meth:`Connection.send`.
    :raises TypeError: for a message that is neither str nor bytes-like.
    """
    payload: Union[bytes, bytearray, memoryview]
    if isinstance(message, str):
        opcode = WSMsgType.BINARY if text is False else WSMsgType.TEXT
        payload = message.encode()
    elif isinstance(message, (bytes, bytearray, memoryview)):
        opcode = WSMsgType.TEXT if text else WSMsgType.BINARY
        payload = message
    else:
        raise TypeError("data must be str or bytes")
    exceptions: List[Exception] = []
    transports: List[WSTransport] = []
    owners: Dict[WSTransport, Connection] = {}
    for connection in connections:
        if connection.state is not _OPEN:
            continue
        if connection._fragmented_send is not None:
            if raise_exceptions:
                exceptions.append(ConcurrencyError("sending a fragmented message"))
            else:
                connection.logger.warning(
                    "skipped broadcast: sending a fragmented message")
            continue
        transport: WSTransport = connection._ws  # type: ignore[assignment]
        transports.append(transport)
        owners[transport] = connection
    if transports:
        # The core's broadcast: the frame built once for every server
        # connection without compression; own copies for the others.
        for transport in _core_broadcast(transports, opcode, payload):
            connection = owners[transport]
            if transport.is_disconnected or transport.is_close_frame_sent:
                continue  # closed meanwhile: as websockets, not an error
            if raise_exceptions:
                exceptions.append(RuntimeError("write buffer full"))
            else:
                connection.logger.warning("skipped broadcast: write buffer full")
    if raise_exceptions and exceptions:
        group = getattr(builtins, "ExceptionGroup", None)
        if group is None:  # Python < 3.11
            raise exceptions[0]
        raise group("skipped broadcast", exceptions)

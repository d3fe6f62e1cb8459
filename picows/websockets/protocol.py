"""The connection state, as websockets.protocol names it."""
from __future__ import annotations

import enum

__all__ = ["State", "Side"]


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

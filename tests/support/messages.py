"""Server handlers for the websockets-compatible layer's tests, run by either
implementation (picows.websockets or the websockets package)."""
from __future__ import annotations

import asyncio
from typing import Any, Callable

from .loopback import wait_for


def producer(count: int) -> Callable[[Any], Any]:
    """A handler that sends the texts "0" .. str(count - 1), then waits for the close."""
    async def handler(ws: Any) -> None:
        for i in range(count):
            await ws.send(str(i))
        await ws.wait_closed()
    return handler


class Gathering:
    """A handler that keeps the connections it serves until they close;
    ``ready`` is set once ``expected`` of them have arrived."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.conns: list[Any] = []
        self.ready = asyncio.Event()

    async def handler(self, ws: Any) -> None:
        self.conns.append(ws)
        if len(self.conns) == self.expected:
            self.ready.set()
        await ws.wait_closed()

    async def broadcast_and_check(self, broadcast: Callable, clients: list,
                                  text: str, data: bytes) -> None:
        """Once all are connected, broadcast `text` then `data` with
        `broadcast` and check that every client gets both, in order."""
        await wait_for(self.ready.wait())
        broadcast(self.conns, text)
        broadcast(self.conns, data)
        for client in clients:
            assert await wait_for(client.recv()) == text
            assert await wait_for(client.recv()) == data

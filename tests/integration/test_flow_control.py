"""pause_writing / resume_writing with a peer that stops reading.

The peer is a raw client that completes the upgrade by hand on an
asyncio StreamReader with a small limit: once that buffer holds about twice
the limit, the StreamReader stops reading from the socket. The picows server
sends from on_ws_connected until its listener's pause_writing is called; the
client then reads everything, and resume_writing must follow.
"""
from __future__ import annotations

from picows import WSMsgType

from tests.support import (RecordingListener, close_writer, pattern, raw_handshake, read_frame,
    serve, wait_for)


CHUNK = 64 * 1024
MAX_BYTES = 256 * 1024 * 1024  # the kernel buffers a few MiB; this means "never paused"


class Flooder(RecordingListener):
    """Sends until paused. A resume before the client drains (a TLS layer
    flushing its own buffer into the socket's, say) just floods again; the
    first resume once the client drains sends a TEXT "resumed" marker."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.draining = False
        self.sent = 0
        self.sent_when_resumed = None
        self.chunk = pattern(CHUNK)

    def on_ws_connected(self, transport) -> None:
        super().on_ws_connected(transport)
        self.flood()

    def flood(self) -> None:
        while not self.paused and self.sent < MAX_BYTES:
            self.transport.send(WSMsgType.BINARY, self.chunk)
            self.sent += CHUNK

    def pause_writing(self) -> None:
        super().pause_writing()
        assert not self.paused, "pause_writing twice without resume_writing"
        self.paused = True

    def resume_writing(self) -> None:
        super().resume_writing()
        assert self.paused, "resume_writing without pause_writing"
        self.paused = False
        if not self.draining:
            self.flood()
        elif self.sent_when_resumed is None:
            self.sent_when_resumed = self.sent
            self.transport.send(WSMsgType.TEXT, b"resumed")


async def test_pause_and_resume_writing(net):
    async with serve(net, lambda request: Flooder()) as server:
        reader, writer = await raw_handshake(net, server.port, limit=4096)
        try:
            flooder, _ = await server.next_connected()
            # Whenever this coroutine runs, the flooder has sent until paused.
            assert flooder.pause_calls >= 1, "pause_writing was never called"
            assert flooder.paused
            assert flooder.sent < MAX_BYTES
            # Now read everything: the buffers drain and resume_writing follows.
            flooder.draining = True
            received = 0
            while True:
                fin, opcode, payload = await wait_for(read_frame(reader))
                assert fin
                if opcode == WSMsgType.TEXT:
                    break
                assert opcode == WSMsgType.BINARY
                assert payload == flooder.chunk
                received += len(payload)
            assert payload == b"resumed"
            assert flooder.resume_calls == flooder.pause_calls
            assert received == flooder.sent == flooder.sent_when_resumed
        finally:
            await close_writer(writer)
        await wait_for(flooder.disconnected)

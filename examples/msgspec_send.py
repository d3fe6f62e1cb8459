"""A picows server pushing market quotes encoded by msgspec straight into the
frame's buffer, and a client that decodes them; exits on its own.

    python examples/msgspec_send.py [COUNT]     (default 10000 quotes)

Needs ``pip install msgspec``. The server encodes each quote with
``Encoder.encode_into(quote, buffer, 14)``, which writes the JSON at offset
14 of one reused bytearray, and sends it with
``transport.send_reuse_external_bytearray(TEXT, buffer, 14)``: picows writes
the frame header into the 14 bytes in front of the message, so the message
is neither copied into a new bytes object nor into a frame buffer. The
client decodes each frame's payload with a typed msgspec decoder, straight
from picows' read buffer (a memoryview, valid during ``on_ws_frame``).
"""
import asyncio
import random
import sys

import msgspec

from picows import WSCloseCode, WSListener, WSMsgType, ws_connect, ws_create_server

# The largest WebSocket frame header is 14 bytes (2 + 8 length + 4 mask);
# send_reuse_external_bytearray needs at least that much room in front.
HEADROOM = 14


class Quote(msgspec.Struct):
    symbol: str
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    ts: int


class QuoteServer(WSListener):
    """Pushes ``count`` quotes to the client that connects, then closes."""

    def __init__(self, count: int):
        self.count = count
        self.writable = asyncio.Event()
        self.writable.set()

    def on_ws_connected(self, transport):
        self.task = asyncio.get_running_loop().create_task(self.push(transport))

    # Flow control: picows calls these when its write backlog crosses the
    # high and then the low watermark (a slow client).
    def pause_writing(self):
        self.writable.clear()

    def resume_writing(self):
        self.writable.set()

    async def push(self, transport):
        encoder = msgspec.json.Encoder()
        buffer = bytearray(256)  # grows if a message ever needs more
        rnd = random.Random(7)
        quote = Quote("BTC-USD", 91000.0, 91000.5, 1.0, 1.0, 1_764_547_200_000)
        for i in range(self.count):
            mid = quote.bid * (1.0 + rnd.gauss(0.0, 0.0002))
            quote.bid, quote.ask = round(mid, 2), round(mid + 0.5, 2)
            quote.bid_size, quote.ask_size = round(rnd.random() * 5, 4), round(rnd.random() * 5, 4)
            quote.ts += rnd.randint(1, 40)
            encoder.encode_into(quote, buffer, HEADROOM)
            transport.send_reuse_external_bytearray(WSMsgType.TEXT, buffer, HEADROOM)
            if i % 100 == 99:
                await asyncio.sleep(0)  # let the loop run (reads, timers)
                await self.writable.wait()
        transport.send_close(WSCloseCode.OK)


class QuoteClient(WSListener):
    def __init__(self):
        self.decoder = msgspec.json.Decoder(Quote)
        self.received = 0
        self.last = None

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.TEXT:
            self.last = self.decoder.decode(frame.get_payload_as_memoryview())
            self.received += 1
        # CLOSE is answered by picows itself (enable_auto_close).


async def main(count: int) -> None:
    server = await ws_create_server(lambda request: QuoteServer(count), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, client = await ws_connect(QuoteClient, f"ws://127.0.0.1:{port}/")
    await transport.wait_disconnected()
    server.close()
    await server.wait_closed()
    print(f"received {client.received} quotes; last: {client.last}", flush=True)
    if client.received != count:
        sys.exit(f"expected {count} quotes")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000))

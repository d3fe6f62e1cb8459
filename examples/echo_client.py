"""A picows client: sends "Hello world", prints the echo, closes.

    python examples/echo_client.py [URL]     (default ws://127.0.0.1:9001/)

Run examples/echo_server.py first.
"""
import asyncio
import sys

from picows import WSCloseCode, WSListener, WSMsgType, ws_connect


class ClientListener(WSListener):
    def on_ws_connected(self, transport):
        transport.send(WSMsgType.TEXT, b"Hello world")

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.TEXT:
            print(f"Echo reply: {frame.get_payload_as_utf8_text()}", flush=True)
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()


async def main(url: str) -> None:
    transport, _ = await ws_connect(ClientListener, url)
    await transport.wait_disconnected()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:9001/"))

"""A picows echo server: every TEXT / BINARY frame comes back as it was sent.

    python examples/echo_server.py [PORT] [HOST]     (default 9001 127.0.0.1)

Runs until Ctrl-C. Pair it with examples/echo_client.py. Uses uvloop when it
is installed.
"""
import asyncio
import sys

from picows import WSListener, WSMsgType, ws_create_server


class ServerEchoListener(WSListener):
    def on_ws_frame(self, transport, frame):
        # PING and CLOSE are answered by picows itself
        # (enable_auto_pong / enable_auto_close); echo the data frames only.
        # frame is only valid during this call: get_payload_as_bytes() copies.
        if frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION):
            transport.send(frame.msg_type, frame.get_payload_as_bytes(), fin=frame.fin)


def listener_factory(request):
    # request is a WSUpgradeRequest: route on request.path, or return None for a 404.
    return ServerEchoListener()


async def main(host: str, port: int) -> None:
    server = await ws_create_server(listener_factory, host, port)
    for sock in server.sockets:
        print(f"Server started on {sock.getsockname()}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9001
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    try:
        import uvloop
        run = uvloop.run
    except ImportError:
        run = asyncio.run
    try:
        run(main(host, port))
    except KeyboardInterrupt:
        print("Server stopped", flush=True)

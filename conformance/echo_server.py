"""Autobahn testee: a picows echo server, for wstest's fuzzingclient mode.

Thin on purpose: it echoes TEXT, BINARY and CONTINUATION frames as they
arrive (same opcode, payload, RSV1 and FIN, so fragmentation is preserved)
and does nothing else.  UTF-8 validation, ping replies, the close handshake
and protocol errors are picows's own defaults, which is what the gate
measures.  Public API only.

    python conformance/echo_server.py [--host 127.0.0.1] [--port 9002] [--loop auto]
                                      [--tls-cert CHAIN.pem --tls-key KEY.pem]

With ``--tls-cert`` and ``--tls-key`` it serves ``wss://`` (the runner's
``--tls``).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import ssl

from testee_loop import install_loop

MAX_FRAME_SIZE = 20 * 1024 * 1024  # 9.* send frames and messages of up to 16 MiB


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9002)
    p.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                   help="event loop: uvloop if importable (auto), or force one")
    p.add_argument("--max-frame-size", type=int, default=MAX_FRAME_SIZE)
    p.add_argument("--tls-cert", help="PEM certificate chain: serve wss://")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("-v", "--verbose", action="store_true", help="picows debug logging")
    return p.parse_args(argv)


def server_ssl_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if not cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def serve(host: str, port: int, max_frame_size: int,
                ssl_context: ssl.SSLContext | None = None) -> None:
    from picows import WSListener, WSMsgType, ws_create_server

    echoed = (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION)

    class EchoListener(WSListener):
        def on_ws_frame(self, transport, frame):
            if frame.msg_type in echoed:
                transport.send(frame.msg_type, frame.get_payload_as_memoryview(),
                               frame.rsv1, fin=frame.fin)

    server = await ws_create_server(lambda request: EchoListener(), host, port,
                                    max_frame_size=max_frame_size,
                                    enable_compression=True, ssl=ssl_context)
    scheme = "wss" if ssl_context else "ws"
    print(f"echo_server: listening on {scheme}://{host}:{port}/", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    loop_name = install_loop(args.loop)
    import picows
    print(f"echo_server: picows {getattr(picows, '__version__', '?')} from "
          f"{picows.__file__}, {loop_name} loop", flush=True)
    try:
        asyncio.run(serve(args.host, args.port, args.max_frame_size,
                          server_ssl_context(args.tls_cert, args.tls_key)))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

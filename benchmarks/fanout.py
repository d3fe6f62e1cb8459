"""Fan-out benchmark: one server broadcasts to many connected clients.

The server (one process, pinned to CPU 0 with ``--pin``) accepts N
connections, then sends M messages of S bytes to all of them, one after the
other, yielding to the loop between messages. The clients (one process on
the other CPU) are the same for every contender: raw asyncio sockets that do
the upgrade by hand and count bytes, so only the server differs. Reported:
messages delivered per second (N * M over the time until the last byte
arrived) and server CPU per delivered message (the server process's CPU
time over the run / (N * M)).

Contenders (server side):
- ``raw``: the floor, an asyncio Protocol server writing one prebuilt frame
  per connection (``transport.write``).
- ``picows-send``: picows, a loop of ``transport.send`` over the
  connections.
- ``picows-broadcast``: ``picows.broadcast``, the frame built once.
- ``websockets``: ``websockets.asyncio.server.broadcast``.
- ``aiohttp``: a loop of ``await ws.send_bytes`` over the connections.

With ``--compress`` the clients offer permessage-deflate
(``client_no_context_takeover; server_no_context_takeover``) and every
server compresses (raw: not applicable).

    python benchmarks/fanout.py --pin --loop uvloop
    python benchmarks/fanout.py --clients 1000 --messages 300 --size 256 --repeat 3

The benchmark reports; it never fails on a number.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import time

from _procs import expect, loop_run, pin, spawn

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
HOST = "127.0.0.1"
LIBS = "raw,picows-send,picows-broadcast,websockets,aiohttp"


def _server_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes([0x82, n]) + payload
    if n < 65536:
        return bytes([0x82, 126]) + n.to_bytes(2, "big") + payload
    return bytes([0x82, 127]) + n.to_bytes(8, "big") + payload


# -- the server side --------------------------------------------------------


async def _serve(lib: str, args, ready, go) -> tuple:
    """Start the contender's server; return (port, send_all(message), close)."""
    if lib == "raw":
        transports: list = []

        class Upgrade(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport
                self.buf = b""

            def data_received(self, data):
                self.buf += data
                if b"\r\n\r\n" in self.buf:
                    key = [line.split(b":", 1)[1].strip() for line in self.buf.split(b"\r\n")
                           if line.lower().startswith(b"sec-websocket-key:")][0]
                    import hashlib
                    accept = base64.b64encode(hashlib.sha1(
                        key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
                    self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\n"
                                         b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                         b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
                    transports.append(self.transport)
                    self.buf = b""
                    ready()

        server = await asyncio.get_running_loop().create_server(Upgrade, HOST, 0)

        def send_all(message):
            frame = _server_frame(message)
            for t in transports:
                t.write(frame)
        return server.sockets[0].getsockname()[1], send_all, server.close

    if lib.startswith("picows"):
        sys.path.insert(0, REPO_ROOT)
        import picows
        conns: list = []

        class Listener(picows.WSListener):
            def on_ws_connected(self, transport):
                conns.append(transport)
                ready()

        server = await picows.ws_create_server(lambda request: Listener(), HOST, 0,
                                               enable_compression=args.compress)
        if lib == "picows-broadcast":
            def send_all(message):
                picows.broadcast(conns, picows.WSMsgType.BINARY, message)
        else:
            def send_all(message):
                binary = picows.WSMsgType.BINARY
                for t in conns:
                    t.send(binary, message)
        return server.sockets[0].getsockname()[1], send_all, server.close

    if lib == "websockets":
        from websockets.asyncio.server import broadcast, serve
        wsconns: set = set()

        async def handler(ws):
            wsconns.add(ws)
            ready()
            await ws.wait_closed()

        server = await serve(handler, HOST, 0, compression="deflate" if args.compress else None,
                             ping_interval=None, max_queue=None)

        def send_all(message):
            broadcast(wsconns, message)
        return server.sockets[0].getsockname()[1], send_all, server.close

    if lib == "aiohttp":
        from aiohttp import web
        aconns: list = []

        async def handler(request):
            ws = web.WebSocketResponse(compress=args.compress, autoping=False)
            await ws.prepare(request)
            aconns.append(ws)
            ready()
            async for _ in ws:
                pass
            return ws

        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]

        async def send_all(message):
            for ws in aconns:
                await ws.send_bytes(message)
        return port, send_all, site._server.close
    raise SystemExit(f"unknown contender {lib!r}")


async def server_main(args) -> None:
    pin(0 if args.pin else None)
    loop = asyncio.get_running_loop()
    connected = 0
    all_in = loop.create_future()

    def ready():
        nonlocal connected
        connected += 1
        if connected == args.clients and not all_in.done():
            all_in.set_result(None)

    port, send_all, close = await _serve(args.lib, args, ready, None)
    print(f"PORT {port}", flush=True)
    await all_in
    # The clients say when to start (after their own set-up), on stdin.
    await loop.run_in_executor(None, sys.stdin.readline)
    message = os.urandom(args.size) if not args.compress else (
        b'{"symbol":"BTC-USD","bid":%d,"ask":%d}' % (1, 2) * (args.size // 36 + 1))[:args.size]
    cpu0 = time.process_time()
    is_coro = asyncio.iscoroutinefunction(send_all)
    for _ in range(args.messages):
        if is_coro:
            await send_all(message)
        else:
            send_all(message)
        await asyncio.sleep(0)
    # Wait until the clients have it all (they print, the parent tells us).
    await loop.run_in_executor(None, sys.stdin.readline)
    cpu = time.process_time() - cpu0
    print("RESULT " + json.dumps({"server_cpu": cpu}), flush=True)
    close()


# -- the clients --------------------------------------------------------------


async def client_main(args) -> None:
    pin(1 if args.pin else None)
    loop = asyncio.get_running_loop()
    expected_payload = args.clients * args.messages * args.size
    received = 0
    done = loop.create_future()
    last = [0.0]

    class Client(asyncio.Protocol):
        def __init__(self):
            self.upgraded = False
            self.buf = b""
            self.pending = 0   # frame bytes still expected in the current frame
            self.connected = loop.create_future()

        def connection_made(self, transport):
            key = base64.b64encode(os.urandom(16))
            ext = (b"Sec-WebSocket-Extensions: permessage-deflate; "
                   b"client_no_context_takeover; server_no_context_takeover\r\n"
                   if args.compress else b"")
            transport.write(b"GET / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n"
                            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                            b"Sec-WebSocket-Key: " + key + b"\r\n"
                            b"Sec-WebSocket-Version: 13\r\n" + ext + b"\r\n")

        def data_received(self, data):
            nonlocal received
            if not self.upgraded:
                self.buf += data
                if b"\r\n\r\n" not in self.buf:
                    return
                head, data = self.buf.split(b"\r\n\r\n", 1)
                self.upgraded = True
                self.connected.set_result(None)
                self.buf = b""
            # Count messages by frames (payloads may be compressed).
            self.buf += data
            while len(self.buf) >= 2:
                n = self.buf[1] & 0x7F
                h = 2
                if n == 126:
                    if len(self.buf) < 4:
                        return
                    n = int.from_bytes(self.buf[2:4], "big")
                    h = 4
                elif n == 127:
                    if len(self.buf) < 10:
                        return
                    n = int.from_bytes(self.buf[2:10], "big")
                    h = 10
                if len(self.buf) < h + n:
                    return
                self.buf = self.buf[h + n:]
                received += args.size
                if received >= expected_payload and not done.done():
                    last[0] = time.perf_counter()
                    done.set_result(None)

    protocols = []
    for _ in range(args.clients):
        _, proto = await loop.create_connection(Client, HOST, args.port)
        protocols.append(proto)
    await asyncio.gather(*(p.connected for p in protocols))
    print("READY", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)   # "go"
    started = time.perf_counter()
    await done
    print("RESULT " + json.dumps({"seconds": last[0] - started}), flush=True)


# -- the parent ---------------------------------------------------------------


def _child(role: str, lib: str, args, port: int = 0) -> subprocess.Popen:
    return spawn(__file__, role, lib, [
        "--clients", str(args.clients), "--messages", str(args.messages),
        "--size", str(args.size), "--loop", args.loop, "--port", str(port),
        *(["--compress"] if args.compress else [])], pin_cpu=args.pin)


def measure(lib: str, args) -> dict:
    server = _child("server", lib, args)
    try:
        port = int(expect(server, "PORT "))
        client = _child("client", lib, args, port)
        try:
            expect(client, "READY")
            server.stdin.write("go\n")
            server.stdin.flush()
            client.stdin.write("go\n")
            client.stdin.flush()
            seconds = json.loads(expect(client, "RESULT "))["seconds"]
            server.stdin.write("done\n")
            server.stdin.flush()
            cpu = json.loads(expect(server, "RESULT "))["server_cpu"]
        finally:
            client.kill()
            client.wait()
    finally:
        server.kill()
        server.wait()
    delivered = args.clients * args.messages
    return {"rate": delivered / seconds, "us_per_msg": cpu / delivered * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["parent", "server", "client"], default="parent")
    parser.add_argument("--lib", default="")
    parser.add_argument("--libs", default=LIBS)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pin", action="store_true",
                        help="server on CPU 0, clients on CPU 1")
    parser.add_argument("--compress", action="store_true",
                        help="permessage-deflate (no context takeover)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    if args.role == "server":
        loop_run(args.loop, server_main(args))
        return
    if args.role == "client":
        loop_run(args.loop, client_main(args))
        return
    libs = [lib for lib in args.libs.split(",") if not (args.compress and lib == "raw")]
    results: dict = {lib: [] for lib in libs}
    for _ in range(args.repeat):
        for lib in libs:
            results[lib].append(measure(lib, args))
    print(f"fan-out: {args.clients} clients x {args.messages} messages of {args.size} B, "
          f"{args.loop}{', compressed' if args.compress else ''}, "
          f"medians of {args.repeat}{', pinned' if args.pin else ''}")
    print("| server | delivered/s | server CPU us/msg |")
    print("| --- | --: | --: |")
    summary = {}
    for lib in libs:
        rate = statistics.median(r["rate"] for r in results[lib])
        us = statistics.median(r["us_per_msg"] for r in results[lib])
        summary[lib] = {"rate": rate, "us_per_msg": us, "runs": results[lib]}
        print(f"| {lib} | {rate:,.0f} | {us:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": summary}, f, indent=2)


if __name__ == "__main__":
    main()

"""Handshakes per second: connect, upgrade, close, one after the other.

The server runs in its own process (pinned to CPU 0 with ``--pin``), the
client in another (CPU 1); both use the same library. The client opens a
connection, completes the websocket upgrade, sends CLOSE, waits for the
connection to end, and starts the next one, for ``--seconds`` after a
warm-up. Reported: completed cycles per second, plain TCP and TLS.

    python benchmarks/handshakes.py --pin
    python benchmarks/handshakes.py --libs picows,websockets --tls --seconds 5

The benchmark reports; it never fails on a number.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

from _procs import expect, loop_run, pin, spawn

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
HOST = "127.0.0.1"
LIBS = "picows,websockets,aiohttp"


def _contexts(certdir: str | None):
    """(server, client) SSLContexts from the files in certdir, or (None, None)."""
    if not certdir:
        return None, None
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(os.path.join(certdir, "cert.pem"), os.path.join(certdir, "key.pem"))
    client = ssl.create_default_context(cafile=os.path.join(certdir, "ca.pem"))
    return server, client


async def server_main(args) -> None:
    pin(0 if args.pin else None)
    server_ssl, _ = _contexts(args.certdir)
    if args.lib == "picows":
        sys.path.insert(0, REPO_ROOT)
        import picows

        class Listener(picows.WSListener):
            pass

        server = await picows.ws_create_server(lambda request: Listener(), HOST, 0,
                                               ssl=server_ssl)
        port = server.sockets[0].getsockname()[1]
    elif args.lib == "websockets":
        from websockets.asyncio.server import serve

        async def handler(ws):
            async for _ in ws:
                pass

        server = await serve(handler, HOST, 0, ssl=server_ssl, compression=None)
        port = server.sockets[0].getsockname()[1]
    elif args.lib == "aiohttp":
        from aiohttp import web

        async def handler(request):
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for _ in ws:
                pass
            return ws

        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0, ssl_context=server_ssl)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
    else:
        raise SystemExit(f"unknown library {args.lib!r}")
    print(f"PORT {port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def client_main(args) -> None:
    pin(1 if args.pin else None)
    _, client_ssl = _contexts(args.certdir)
    scheme = "wss" if client_ssl else "ws"
    url = f"{scheme}://{HOST}:{args.port}/"
    if args.lib == "picows":
        sys.path.insert(0, REPO_ROOT)
        import picows

        async def cycle():
            transport, _ = await picows.ws_connect(picows.WSListener, url,
                                                   ssl_context=client_ssl)
            transport.send_close(picows.WSCloseCode.OK)
            await transport.wait_disconnected()
    elif args.lib == "websockets":
        from websockets.asyncio.client import connect

        async def cycle():
            ws = await connect(url, ssl=client_ssl, compression=None)
            await ws.close()
    else:
        import aiohttp
        session = aiohttp.ClientSession()

        async def cycle():
            ws = await session.ws_connect(url, ssl=client_ssl if client_ssl else False,
                                          autoping=False)
            await ws.close()

    deadline = time.perf_counter() + args.warmup
    while time.perf_counter() < deadline:
        await cycle()
    count = 0
    started = time.perf_counter()
    deadline = started + args.seconds
    while time.perf_counter() < deadline:
        await cycle()
        count += 1
    elapsed = time.perf_counter() - started
    if args.lib == "aiohttp":
        await session.close()
    print("RESULT " + json.dumps({"rate": count / elapsed}), flush=True)


def _child(role: str, lib: str, args, port: int = 0) -> subprocess.Popen:
    return spawn(__file__, role, lib, [
        "--loop", args.loop, "--port", str(port), "--seconds", str(args.seconds),
        "--warmup", str(args.warmup), *(["--certdir", args.certdir] if args.certdir else [])],
        pin_cpu=args.pin)


def measure(lib: str, args) -> float:
    server = _child("server", lib, args)
    try:
        port = int(expect(server, "PORT "))
        client = _child("client", lib, args, port)
        try:
            return json.loads(expect(client, "RESULT "))["rate"]
        finally:
            client.kill()
            client.wait()
    finally:
        server.kill()
        server.wait()


def _make_certs(directory: str) -> None:
    import trustme
    ca = trustme.CA()
    cert = ca.issue_cert(HOST)
    ca.cert_pem.write_to_path(os.path.join(directory, "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(os.path.join(directory, "cert.pem"))
    cert.private_key_pem.write_to_path(os.path.join(directory, "key.pem"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["parent", "server", "client"], default="parent")
    parser.add_argument("--lib", default="")
    parser.add_argument("--libs", default=LIBS)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pin", action="store_true")
    parser.add_argument("--tls", action="store_true", help="TLS only (default: both)")
    parser.add_argument("--tcp", action="store_true", help="plain TCP only")
    parser.add_argument("--certdir", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    if args.role == "server":
        loop_run(args.loop, server_main(args))
        return
    if args.role == "client":
        loop_run(args.loop, client_main(args))
        return
    libs = args.libs.split(",")
    modes = ["tls"] if args.tls else ["tcp"] if args.tcp else ["tcp", "tls"]
    summary: dict = {}
    with tempfile.TemporaryDirectory() as certdir:
        _make_certs(certdir)
        for mode in modes:
            args.certdir = certdir if mode == "tls" else None
            rates: dict = {lib: [] for lib in libs}
            for _ in range(args.repeat):
                for lib in libs:
                    rates[lib].append(measure(lib, args))
            summary[mode] = {lib: statistics.median(r) for lib, r in rates.items()}
    print(f"handshakes per second (connect, upgrade, close), {args.loop}, medians of "
          f"{args.repeat} x {args.seconds:g} s{', pinned' if args.pin else ''}")
    print("| | " + " | ".join(libs) + " |")
    print("| --- |" + " --: |" * len(libs))
    for mode, rates in summary.items():
        print(f"| {mode} | " + " | ".join(f"{rates[lib]:,.0f}" for lib in libs) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items() if k != "certdir"},
                       "results": summary}, f, indent=2)


if __name__ == "__main__":
    main()

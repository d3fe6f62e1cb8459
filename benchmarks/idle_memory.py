"""RSS per idle server connection, with and without permessage-deflate.

The server (picows, in this process) accepts N connections from a child
process that completes the upgrade with plain sockets and then stays idle;
once all are open the server's RSS growth is divided by N. The "active"
case first exchanges one compressed message each way on every connection
(so both zlib streams exist): the cost of a connection that has compressed.

    python benchmarks/idle_memory.py                 # 1000 connections, each case
    python benchmarks/idle_memory.py --loop asyncio --case compressed
    python benchmarks/idle_memory.py --case active \
        --settings server_max_window_bits=12,mem_level=5,backend=zlib

Quote results with the command, the machine and the date (house style).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# At the end: an installed picows (tox) wins over the checkout, which has
# no extension unless it was built in place.
sys.path.append(ROOT)

from picows import WSCompression, WSListener, WSMsgType, ws_create_server  # noqa: E402

CLIENT = r'''
import asyncio, base64, os, sys, zlib
port, n = int(sys.argv[1]), int(sys.argv[2])
compress, active, offer = sys.argv[3] == "1", sys.argv[4] == "1", sys.argv[5]

async def one():
    r, w = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    ext = f"Sec-WebSocket-Extensions: {offer}\r\n" if compress else ""
    w.write(f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n".encode())
    head = await r.readuntil(b"\r\n\r\n")
    assert b" 101 " in head and (not compress or b"permessage-deflate" in head), head
    if active:
        c = zlib.compressobj(wbits=-15)
        payload = (c.compress(b"hello " * 50) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
        mask = b"\x01\x02\x03\x04"
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        w.write(bytes([0xC2, 0x80 | len(payload)]) + mask + masked)
        await r.readexactly(2)
    return r, w

async def run_clients():
    conns = []
    for i in range(0, n, 100):
        conns += await asyncio.gather(*[one() for _ in range(min(100, n - i))])
    print("ready", flush=True)
    sys.stdin.readline()

asyncio.run(run_clients())
'''

CASES = {"plain": (False, False), "compressed": (True, False), "active": (True, True)}
LABELS = {"plain": "plain, idle", "compressed": "compressed, idle",
          "active": "compressed, after one message each way"}


class Echo(WSListener):
    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.BINARY:
            transport.send(WSMsgType.BINARY, frame.get_payload_as_bytes())


OFFER = "permessage-deflate"
# The server's WSCompression keyword arguments (--settings); {}: True.
SETTINGS: dict = {}


def parse_settings(text: str) -> dict:
    """'server_max_window_bits=12,backend=zlib' -> WSCompression kwargs."""
    out: dict = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if value in ("True", "False"):
            out[key] = value == "True"
        else:
            try:
                out[key] = int(value)
            except ValueError:
                out[key] = value
    return out


async def clients(port: int, n: int, compress: bool, active: bool):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, str(port), str(n), "1" if compress else "0",
        "1" if active else "0", OFFER, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = await proc.stdout.readline()
    assert line.strip() == b"ready", line
    return proc


async def measure(n: int, compress: bool, active: bool) -> float:
    server = await ws_create_server(lambda request: Echo(), "127.0.0.1", 0,
                                    enable_compression=compress and (
                                        WSCompression(**SETTINGS) if SETTINGS else True))
    port = server.sockets[0].getsockname()[1]
    me = psutil.Process()
    # One connection first, so one-time allocations do not count.
    warm = await clients(port, 1, compress, active)
    gc.collect()
    before = me.memory_info().rss
    proc = await clients(port, n, compress, active)
    for _ in range(10):
        await asyncio.sleep(0.05)
    gc.collect()
    after = me.memory_info().rss
    for p in (proc, warm):
        p.stdin.write(b"\n")
        await p.stdin.drain()
        await p.wait()
    server.close()
    await server.wait_closed()
    return (after - before) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="connections (default 1000)")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--case", choices=sorted(CASES),
                        help="measure one case in this process (default: each in its own)")
    parser.add_argument("--offer", default=OFFER,
                        help="the clients' Sec-WebSocket-Extensions, e.g. "
                             "'permessage-deflate; server_max_window_bits=10'")
    parser.add_argument("--settings", default="",
                        help="the server's WSCompression, e.g. "
                             "'server_max_window_bits=12,mem_level=5,backend=zlib'")
    args = parser.parse_args()
    globals()["OFFER"] = args.offer
    SETTINGS.update(parse_settings(args.settings))
    if args.case is None:
        # A fresh process per case: memory freed by one would hide the next.
        for case in CASES:
            subprocess.run([sys.executable, __file__, "-n", str(args.n), "--loop", args.loop,
                            "--case", case, "--offer", args.offer,
                            "--settings", args.settings], check=True)
        return
    run = asyncio.run
    if args.loop == "uvloop":
        import uvloop
        run = uvloop.run
    per = run(measure(args.n, *CASES[args.case]))
    print(f"{LABELS[args.case]:40} {per / 1024:6.1f} KiB per connection "
          f"({args.n} connections, {args.loop}"
          f"{'; ' + args.offer if CASES[args.case][0] else ''}"
          f"{'; ' + args.settings if CASES[args.case][0] and args.settings else ''})",
          flush=True)


if __name__ == "__main__":
    main()

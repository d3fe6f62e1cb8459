"""Load: 2,000 concurrent client connections to one server on loopback.

The server runs in a subprocess (its RSS is then its own, and it gets the
second core), echoing every frame as it came, zero-copy. This process opens
all 2,000 connections first, then every connection sends 50 messages of a
random size from 0 to 64 KiB, TEXT and BINARY, about a third of them
fragmented (fin=False + CONTINUATION), with at most two messages in flight
per connection. Each message starts with an ASCII header naming its
connection, sequence number and the CRC-32 of the rest, so a lost, reordered,
corrupted or misdelivered (another connection's) message is caught. Then
every connection closes with 1000 and must see the server's 1000 back.

Wall time and peak RSS are printed (no timing assertions); the server's peak
RSS must stay under SERVER_RSS_LIMIT.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
import zlib
from pathlib import Path

import pytest

import picows
from picows import WSCloseCode, WSListener, WSMsgType, ws_connect

from tests.support import raise_nofile


try:
    import uvloop  # noqa: F401
    LOOP = "uvloop"
except ImportError:  # pragma: no cover
    LOOP = "asyncio"

CONNECTIONS = 2000
MESSAGES = 50
MAX_SIZE = 64 * 1024
IN_FLIGHT = 2
HEADER = 24  # "%08x%08x%08x": connection, sequence, CRC-32 of the rest
SERVER_RSS_LIMIT = 1024 * 1024 * 1024
DEADLINE = 240.0  # a bound on the whole test, far above the normal run

pytestmark = [pytest.mark.load, pytest.mark.asyncio(loop_factories=[LOOP]),
              pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="reads /proc for the server's RSS")]

SERVER = textwrap.dedent("""
    import asyncio, json, resource, sys
    from picows import WSListener, WSMsgType, ws_create_server

    stats = {"connected": 0, "disconnected": 0, "close_1000": 0, "frames": 0}

    class Echo(WSListener):
        def on_ws_connected(self, transport):
            stats["connected"] += 1

        def on_ws_frame(self, transport, frame):
            stats["frames"] += 1
            if frame.msg_type == WSMsgType.CLOSE:
                if frame.get_close_code() == 1000:
                    stats["close_1000"] += 1
                return
            if frame.msg_type in (WSMsgType.PING, WSMsgType.PONG):
                return
            transport.send(frame.msg_type, frame.get_payload_as_memoryview(), fin=frame.fin)

        def on_ws_disconnected(self, transport):
            stats["disconnected"] += 1

    async def main():
        server = await ws_create_server(lambda request: Echo(), "127.0.0.1", 0,
                                        backlog=4096, max_frame_size=1 << 20)
        print("PORT", server.sockets[0].getsockname()[1], flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)  # "stop"
        server.close()
        await server.wait_closed()
        stats["ru_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(stats), flush=True)

    if sys.argv[1] == "uvloop":
        import uvloop
        uvloop.install()
    asyncio.run(main())
""")


def _proc_status(pid: int, field: str) -> int:
    """A /proc/<pid>/status field in bytes (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


# Payloads are slices of two random pools, so making 100,000 messages costs
# no more than the copies: bytes for BINARY, UTF-8 text (1 to 4 byte
# characters) for TEXT, sliced on character boundaries.
_rng = random.Random(6455)
BINARY_POOL = _rng.randbytes(2 * MAX_SIZE)
TEXT_POOL = "".join(_rng.choice("abcxyz \u00e9\u00fc\u03bb\u20ac\u4e2d\U0001f600")
                    for _ in range(2 * MAX_SIZE)).encode()
assert len(TEXT_POOL) > 2 * MAX_SIZE


def _text_slice(start: int, size: int) -> bytes:
    while TEXT_POOL[start] & 0xC0 == 0x80:
        start += 1
    end = start + size
    while end < len(TEXT_POOL) and TEXT_POOL[end] & 0xC0 == 0x80:
        end -= 1
    return TEXT_POOL[start:end]


def make_message(rng: random.Random, conn: int, seq: int) -> tuple[WSMsgType, bytes]:
    size = rng.randint(0, MAX_SIZE)
    body_size = max(0, size - HEADER)
    if rng.random() < 0.5:
        msg_type = WSMsgType.TEXT
        body = _text_slice(rng.randrange(len(TEXT_POOL) - MAX_SIZE - 4), body_size)
    else:
        msg_type = WSMsgType.BINARY
        start = rng.randrange(MAX_SIZE)
        body = BINARY_POOL[start:start + body_size]
    header = b"%08x%08x%08x" % (conn, seq, zlib.crc32(body))
    return msg_type, header + body


class LoadClient(WSListener):
    """Reassembles echoed messages and queues them in arrival order."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: asyncio.Queue = asyncio.Queue()
        self.parts: list[bytes] = []
        self.msg_type = None
        self.close_code = None
        self.disconnected_calls = 0

    def on_ws_frame(self, transport, frame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            self.close_code = int(frame.get_close_code())
            return
        if frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            assert not self.parts and self.msg_type is None
            self.msg_type = frame.msg_type
        elif frame.msg_type == WSMsgType.CONTINUATION:
            assert self.msg_type is not None
        else:
            return
        self.parts.append(frame.get_payload_as_bytes())
        if frame.fin:
            self.messages.put_nowait((self.msg_type, b"".join(self.parts)))
            self.parts = []
            self.msg_type = None

    def on_ws_disconnected(self, transport) -> None:
        self.disconnected_calls += 1


def send_message(transport, rng: random.Random, msg_type: WSMsgType, data: bytes) -> None:
    if len(data) > 3 and rng.random() < 0.33:
        cuts = sorted(rng.sample(range(1, len(data)), min(3, len(data) - 1)))
        pieces = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
        transport.send(msg_type, pieces[0], fin=False)
        for piece in pieces[1:-1]:
            transport.send(WSMsgType.CONTINUATION, piece, fin=False)
        transport.send(WSMsgType.CONTINUATION, pieces[-1], fin=True)
    else:
        transport.send(msg_type, data)


async def run_connection(conn: int, transport, client: LoadClient, stats: dict) -> None:
    rng = random.Random(conn)
    expected: list[tuple[WSMsgType, bytes]] = []

    async def check_next() -> None:
        msg_type, data = await client.messages.get()
        want_type, want = expected.pop(0)
        assert msg_type == want_type, (conn, msg_type, want_type)
        assert len(data) == len(want), (conn, len(data), len(want))
        if len(data) >= HEADER:
            got_conn, got_seq, crc = (int(data[i:i + 8], 16) for i in (0, 8, 16))
            assert got_conn == conn, f"connection {conn} got connection {got_conn}'s data"
            assert got_seq == stats_seq(want), (conn, got_seq)
            assert zlib.crc32(data[HEADER:]) == crc, (conn, got_seq, "checksum")
        assert data == want, (conn, "payload differs")
        stats["messages"] += 1
        stats["bytes"] += len(data)

    for seq in range(MESSAGES):
        msg_type, data = make_message(rng, conn, seq)
        expected.append((msg_type, data))
        send_message(transport, rng, msg_type, data)
        if len(expected) >= IN_FLIGHT:
            await check_next()
    while expected:
        await check_next()


def stats_seq(message: bytes) -> int:
    return int(message[8:16], 16) if len(message) >= HEADER else -1


async def test_2000_connections_echo(capsys):
    raise_nofile(2 * CONNECTIONS + 512)
    # The child imports the same picows as this process (built in place, or
    # installed by tox), never the sources in the working directory.
    picows_root = str(Path(picows.__file__).parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (picows_root, os.environ.get("PYTHONPATH")) if p))
    server = subprocess.Popen([sys.executable, "-c", SERVER, LOOP], stdin=subprocess.PIPE,
                              env=env, cwd=tempfile.gettempdir(),
                              stdout=subprocess.PIPE, text=True)
    try:
        line = await asyncio.wait_for(
            asyncio.get_running_loop().run_in_executor(None, server.stdout.readline), 30)
        assert line.startswith("PORT "), line
        url = f"ws://127.0.0.1:{int(line.split()[1])}/"
        started = time.monotonic()
        peak = {"server": 0}
        sampling = asyncio.ensure_future(_sample_rss(server.pid, peak))
        stats = {"messages": 0, "bytes": 0}

        # 1. Every connection open at the same time.
        conns = []
        for batch in range(0, CONNECTIONS, 250):
            conns += await asyncio.wait_for(asyncio.gather(*[
                ws_connect(LoadClient, url, max_frame_size=1 << 20)
                for _ in range(batch, min(batch + 250, CONNECTIONS))]), 60)
        connected = time.monotonic()
        # 2. All of them exchanging messages.
        await asyncio.wait_for(asyncio.gather(*[
            run_connection(i, transport, client, stats)
            for i, (transport, client) in enumerate(conns)]), DEADLINE)
        exchanged = time.monotonic()
        # 3. A clean close handshake on every one.
        for transport, _ in conns:
            transport.send_close(WSCloseCode.OK)
        await asyncio.wait_for(asyncio.gather(*[
            transport.wait_disconnected() for transport, _ in conns]), 60)
        finished = time.monotonic()
        sampling.cancel()
        peak["server"] = max(peak["server"], _proc_status(server.pid, "VmHWM"))

        server.stdin.write("stop\n")
        server.stdin.flush()
        out = await asyncio.wait_for(
            asyncio.get_running_loop().run_in_executor(None, server.stdout.readline), 30)
        server_stats = json.loads(out)
    finally:
        if server.poll() is None:
            server.stdin.close()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    assert stats["messages"] == CONNECTIONS * MESSAGES
    assert all(client.close_code == WSCloseCode.OK for _, client in conns)
    assert all(client.disconnected_calls == 1 for _, client in conns)
    assert all(client.parts == [] and client.messages.empty() for _, client in conns)
    assert server_stats["connected"] == CONNECTIONS
    assert server_stats["disconnected"] == CONNECTIONS
    assert server_stats["close_1000"] == CONNECTIONS
    client_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with capsys.disabled():
        print(f"\nload ({LOOP}): {CONNECTIONS} connections x {MESSAGES} messages, "
              f"{stats['bytes'] / 2 ** 30:.2f} GiB echoed; "
              f"connect {connected - started:.1f} s, exchange {exchanged - connected:.1f} s, "
              f"close {finished - exchanged:.1f} s, wall {finished - started:.1f} s; "
              f"peak RSS server {peak['server'] / 2 ** 20:.0f} MiB, "
              f"test process {client_rss / 2 ** 20:.0f} MiB")
    assert peak["server"] < SERVER_RSS_LIMIT, peak


async def _sample_rss(pid: int, peak: dict) -> None:
    while True:
        peak["server"] = max(peak["server"], _proc_status(pid, "VmRSS"))
        await asyncio.sleep(0.5)



"""Soak: many short connections, ending every way a connection can end, and
nothing left behind.

    python tests/soak.py                      # 100,000 cycles, uvloop
    python tests/soak.py --cycles 5000 --loop asyncio
    tox -e soak -- --cycles 20000             # the same from a fresh env

One process runs a picows server on 127.0.0.1 (plain TCP and TLS, a
certificate made by trustme) and picows clients against it, ``--concurrency``
at a time. A cycle is: connect, echo one message (0 B to 64 KiB, TEXT or
BINARY), end the connection. The ends, in turn:

- ``clean``: the client sends CLOSE 1000, the server answers, TCP closes;
- ``reset``: the client resets the TCP connection (SO_LINGER 0, then abort);
- ``server-reset``: the server's listener resets it, the client sees it go;
- ``tls-clean``: TLS, the client sends CLOSE 1000;
- ``tls-abort``: TLS, the client drops the connection (SO_LINGER 0, abort):
  no close_notify, no CLOSE, an RST.

Checked at the end, after gc.collect(): every cycle echoed intact and ended;
on_ws_connected and on_ws_disconnected ran exactly once per connection on
both sides; no listener is still alive (a transport or listener kept by a
reference cycle or a forgotten handle shows here); the open file
descriptors are back to their baseline; RSS grew by less than
``--max-rss-growth`` MiB over the baseline. The baseline is taken after a
warm-up of ``--warmup`` cycles (allocator arenas, TLS session machinery,
imports), so growth measures what the soak itself keeps. RSS is read after
gc.collect() and glibc's malloc_trim(0) (see collect()); the untrimmed
figures are printed too.

Exit status 0 when every check passes, 1 otherwise. Linux only (/proc).
Not collected by pytest (the file name does not start with test_).
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import os
import socket
import ssl
import struct
import sys
import time
import weakref
from collections import Counter

# tests.support (and, without an installed picows, the in-place build) live
# in the repository: append its root, so an installed picows still comes first.
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from picows import WSListener, WSMsgType, ws_connect, ws_create_server  # noqa: E402
from tests.support import tls_contexts  # noqa: E402

KINDS = ("clean", "reset", "server-reset", "tls-clean", "tls-abort")
SIZES = (0, 1, 125, 126, 4096, 65536)
TIMEOUT = 30.0  # per cycle; a loopback cycle takes about a millisecond
RESET_PLEASE = b"reset, please"  # asks the server to reset this connection


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def collect() -> tuple[int, int]:
    """gc.collect(), then RSS before and after glibc's malloc_trim(0).

    glibc keeps freed memory in its heap, and TLS handshakes fragment it:
    over a few thousand TLS cycles RSS grows by tens of MiB that are free,
    and malloc_trim gives back. The trimmed RSS is what is still in use, the
    figure a leak shows in; both are printed. Without glibc, both are the
    same."""
    gc.collect()
    before = rss_bytes()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return before, rss_bytes()


def payload_for(cycle: int) -> tuple[WSMsgType, bytes]:
    size = SIZES[cycle % len(SIZES)]
    if cycle % 2:
        return WSMsgType.BINARY, bytes((cycle + i) & 0xFF for i in range(size))
    return WSMsgType.TEXT, (b"soak %d " % cycle * (size // 6 + 1))[:size]


def reset(transport) -> None:
    """Close with RST instead of FIN (and, over TLS, without close_notify)."""
    underlying = transport.underlying_transport
    sock = underlying.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    underlying.abort()


# ------------------------------------------------------------------ server

class Stats:
    def __init__(self) -> None:
        self.server_connected = 0
        self.server_disconnected = 0
        self.client_connected = 0
        self.client_disconnected = 0
        self.double_callbacks = 0
        self.listeners: weakref.WeakSet = weakref.WeakSet()


class ServerEcho(WSListener):
    def __init__(self, stats: Stats) -> None:
        super().__init__()
        self.stats = stats
        self.done = False
        stats.listeners.add(self)

    def on_ws_connected(self, transport) -> None:
        self.stats.server_connected += 1

    def on_ws_frame(self, transport, frame) -> None:
        if frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            if frame.msg_type == WSMsgType.TEXT and \
                    frame.get_payload_as_bytes() == RESET_PLEASE:
                reset(transport)
                return
            transport.send(frame.msg_type, frame.get_payload_as_memoryview(), fin=frame.fin)

    def on_ws_disconnected(self, transport) -> None:
        if self.done:
            self.stats.double_callbacks += 1
        self.done = True
        self.stats.server_disconnected += 1


class ClientListener(WSListener):
    def __init__(self, stats: Stats) -> None:
        super().__init__()
        self.stats = stats
        self.done = False
        self.echo: asyncio.Future = asyncio.get_running_loop().create_future()
        stats.listeners.add(self)

    def on_ws_connected(self, transport) -> None:
        self.stats.client_connected += 1

    def on_ws_frame(self, transport, frame) -> None:
        if frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY) and not self.echo.done():
            self.echo.set_result((frame.msg_type, frame.get_payload_as_bytes()))

    def on_ws_disconnected(self, transport) -> None:
        if self.done:
            self.stats.double_callbacks += 1
        self.done = True
        self.stats.client_disconnected += 1


# ------------------------------------------------------------------ cycles

async def cycle(n: int, kind: str, urls: dict[str, str], client_ssl: ssl.SSLContext,
                stats: Stats) -> None:
    tls = kind.startswith("tls")
    transport, listener = await ws_connect(
        lambda: ClientListener(stats), urls["tls" if tls else "tcp"],
        **({"ssl_context": client_ssl} if tls else {}))
    msg_type, payload = payload_for(n)
    transport.send(msg_type, payload)
    got = await asyncio.wait_for(listener.echo, TIMEOUT)
    if got != (msg_type, payload):
        raise AssertionError(f"cycle {n}: echo differs ({len(got[1])} bytes back, "
                             f"{len(payload)} sent)")
    if kind in ("clean", "tls-clean"):
        transport.send_close(1000)
    elif kind == "server-reset":
        transport.send(WSMsgType.TEXT, RESET_PLEASE)
    else:
        reset(transport)
    await asyncio.wait_for(transport.wait_disconnected(), TIMEOUT)


async def run_cycles(first: int, count: int, concurrency: int, urls: dict[str, str],
                     client_ssl: ssl.SSLContext, stats: Stats, kinds: Counter,
                     errors: list[str], progress, kind_list: list[str]) -> None:
    next_cycle = first
    end = first + count

    async def worker() -> None:
        nonlocal next_cycle
        while next_cycle < end:
            n = next_cycle
            next_cycle += 1
            kind = kind_list[n % len(kind_list)]
            try:
                await cycle(n, kind, urls, client_ssl, stats)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors.append(f"cycle {n} ({kind}): {exc!r}")
            kinds[kind] += 1
            progress(n - first + 1)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def settle(stats: Stats, baseline_fds: int) -> None:
    """Wait (bounded) for every server-side disconnect and every descriptor."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if stats.server_disconnected >= stats.server_connected and open_fds() <= baseline_fds:
            return
        await asyncio.sleep(0.05)


async def soak(args: argparse.Namespace) -> int:
    stats = Stats()
    contexts = tls_contexts()
    server_ssl, client_ssl = contexts.server, contexts.client
    servers = {
        "tcp": await ws_create_server(lambda request: ServerEcho(stats), "127.0.0.1", 0,
                                      backlog=1024),
        "tls": await ws_create_server(lambda request: ServerEcho(stats), "127.0.0.1", 0,
                                      backlog=1024, ssl=server_ssl),
    }
    urls = {name: f"{'wss' if name == 'tls' else 'ws'}://127.0.0.1:"
                  f"{s.sockets[0].getsockname()[1]}/"
            for name, s in servers.items()}
    kinds: Counter = Counter()
    errors: list[str] = []
    step = max(1, args.cycles // 10)
    started = time.monotonic()

    def progress(done: int) -> None:
        if done % step == 0 or done == args.cycles:
            elapsed = time.monotonic() - started
            print(f"soak: {done:>7}/{args.cycles} cycles, {elapsed:6.1f} s, "
                  f"{done / elapsed:6.0f}/s, fds {open_fds()}, "
                  f"RSS {rss_bytes() / 2**20:.1f} MiB (untrimmed), errors {len(errors)}",
                  flush=True)

    await run_cycles(0, args.warmup, args.concurrency, urls, client_ssl, stats, kinds,
                     errors, lambda done: None, args.kinds)
    await settle(stats, open_fds())
    baseline_fds = open_fds()
    baseline_untrimmed, baseline_rss = collect()
    print(f"soak: {args.warmup} warm-up cycles; baseline {baseline_fds} fds, "
          f"RSS {baseline_rss / 2**20:.1f} MiB after malloc_trim "
          f"({baseline_untrimmed / 2**20:.1f} before); {args.cycles} cycles on {args.loop}, "
          f"{args.concurrency} at a time", flush=True)

    started = time.monotonic()
    await run_cycles(args.warmup, args.cycles, args.concurrency, urls, client_ssl, stats,
                     kinds, errors, progress, args.kinds)
    elapsed = time.monotonic() - started
    await settle(stats, baseline_fds)
    gc.collect()
    await asyncio.sleep(0)
    end_fds = open_fds()
    end_untrimmed, end_rss = collect()
    alive = len(stats.listeners)
    total = args.warmup + args.cycles

    failures = []
    if errors:
        failures.append(f"{len(errors)} cycles failed; first: " + "; ".join(errors[:5]))
    for side in ("server", "client"):
        connected = getattr(stats, f"{side}_connected")
        disconnected = getattr(stats, f"{side}_disconnected")
        if connected != total or disconnected != total:
            failures.append(f"{side}: {connected} on_ws_connected, {disconnected} "
                            f"on_ws_disconnected for {total} connections")
    if stats.double_callbacks:
        failures.append(f"on_ws_disconnected ran twice {stats.double_callbacks} times")
    if alive:
        failures.append(f"{alive} listeners still alive after gc.collect()")
    if end_fds > baseline_fds:
        failures.append(f"{end_fds - baseline_fds} file descriptors leaked")
    growth = (end_rss - baseline_rss) / 2**20
    if growth > args.max_rss_growth:
        failures.append(f"RSS grew {growth:.1f} MiB (bound {args.max_rss_growth} MiB)")

    for server in servers.values():
        server.close()
        await server.wait_closed()

    print(f"soak: {args.cycles} cycles in {elapsed:.1f} s ({args.cycles / elapsed:.0f}/s) on "
          f"{args.loop}: " + ", ".join(f"{k} {kinds[k]}" for k in args.kinds)
          + " (warm-up included)")
    print(f"soak: fds {baseline_fds} -> {end_fds}; RSS after malloc_trim "
          f"{baseline_rss / 2**20:.1f} -> {end_rss / 2**20:.1f} MiB ({growth:+.1f} MiB, "
          f"bound {args.max_rss_growth}); before malloc_trim {baseline_untrimmed / 2**20:.1f} "
          f"-> {end_untrimmed / 2**20:.1f} MiB; "
          f"listeners alive {alive}; callbacks server {stats.server_connected}/"
          f"{stats.server_disconnected}, client {stats.client_connected}/"
          f"{stats.client_disconnected}")
    for failure in failures:
        print(f"soak: FAIL {failure}")
    print(f"soak: {'PASS' if not failures else 'FAIL'}")
    return 1 if failures else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cycles", type=int, default=100_000,
                   help="connect/echo/close cycles after the warm-up (default 100,000)")
    p.add_argument("--warmup", type=int, default=1000,
                   help="cycles before the baseline is taken (default 1,000)")
    p.add_argument("--concurrency", type=int, default=50,
                   help="connections in flight at once (default 50)")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    p.add_argument("--kinds", default=",".join(KINDS),
                   help="comma-separated ends to cycle through (default all: "
                        + ", ".join(KINDS) + ")")
    p.add_argument("--max-rss-growth", type=float, default=16.0, metavar="MIB",
                   help="allowed RSS growth over the baseline, MiB (default 16)")
    args = p.parse_args(argv)
    args.kinds = args.kinds.split(",")
    unknown = set(args.kinds) - set(KINDS)
    if unknown:
        p.error(f"--kinds: unknown {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    if not sys.platform.startswith("linux"):
        print("soak: Linux only (reads /proc/self)", file=sys.stderr)
        return 2
    args = parse_args(argv)
    if args.loop == "uvloop":
        import uvloop
        return uvloop.run(soak(args))
    return asyncio.run(soak(args))


if __name__ == "__main__":
    sys.exit(main())

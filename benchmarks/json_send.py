"""JSON send benchmark: encode a small dict and send it as a TEXT frame.

The measured process (the sender) is a picows server or client with one
connection to a peer in another process that only drains its socket (plain
blocking recv into a 1 MiB buffer, no parsing), so the sender's socket
never fills and every ``send`` ends in one ``send()`` system call, as it
does for a server pushing quotes. The sender runs a tight loop of N
encode + send steps per variant, in batches of 1,000 with a pass through
the event loop in between; the variants take turns (interleaved), and the
report gives the median over the repeats of the sender thread's CPU time
per message (user + kernel, ``time.thread_time_ns``), the wall time beside it.

Variants (``TEXT`` = ``WSMsgType.TEXT``, ``d`` = one of 500 quote dicts of
7 fields, about 130 bytes of JSON):

    json            transport.send(TEXT, json.dumps(d).encode())
    msgspec         transport.send(TEXT, encoder.encode(d))
    msgspec-into    encoder.encode_into(d, buf, 14)
                    transport.send_reuse_external_bytearray(TEXT, buf, 14)
    prebuilt        transport.send(TEXT, b) with b encoded beforehand: the
                    floor, the send alone

and the same three encodings without the send (``*-encode``), for what the
encoding alone costs. ``encoder`` is a ``msgspec.json.Encoder()``.

    python benchmarks/json_send.py --pin
    python benchmarks/json_send.py --pin --sides server --count 200000 --repeats 5
    python benchmarks/json_send.py --instructions      # callgrind, user space

``--instructions`` runs each variant's sender under callgrind twice (N1 and
N2 messages) and prints the difference per message: user-space instructions
only (the system call's kernel side is not counted), repeatable whatever
the machine is doing. They are not native instruction counts: on the
Python measured (3.11, pyenv build) callgrind counts several times more
instructions than the native run can execute in its time, and not by the
same factor everywhere (an empty ``for`` iteration: 198 instructions vs
8 ns natively; ``repr(int)``: 1.8k vs 42 ns; ``repr(float)``: 4.4k vs
170 ns). Interpreter-heavy and float-heavy code (``json.dumps``) is
inflated most, so compare the variants by CPU time; the counts are a
repeatable check of the send path itself (``prebuilt``).

The benchmark reports; it never fails on a number.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import _quotes
from _procs import expect, loop_run, pin

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
HOST = "127.0.0.1"
SEND_VARIANTS = ("json", "msgspec", "msgspec-into", "prebuilt")
ENCODE_VARIANTS = ("json-encode", "msgspec-encode", "msgspec-into-encode")
VARIANTS = SEND_VARIANTS + ENCODE_VARIANTS
BATCH = 1000
HEADROOM = 14  # the largest frame header: send_reuse_external_bytearray's minimum offset


def import_picows():
    try:
        import picows
    except ImportError:
        sys.path.insert(0, REPO_ROOT)  # built in place, not installed
        import picows
    return picows


# ---------------------------------------------------------------------------
# The peer: does the upgrade by hand, then drains
# ---------------------------------------------------------------------------

def role_peer(args) -> None:
    """The other end. ``--side server``: the sender is the server, we
    connect to ``--port``; ``--side client``: we listen and print PORT."""
    pin(args.cpu)
    if args.side == "server":
        sock = socket.create_connection((HOST, args.port))
        key = base64.b64encode(os.urandom(16))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n"
                     b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    else:
        listener = socket.create_server((HOST, 0))
        print(f"PORT {listener.getsockname()[1]}", flush=True)
        sock, _ = listener.accept()
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = sock.recv(4096)
            if not chunk:
                return
            request += chunk
        key = [line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:")][0]
        accept = base64.b64encode(hashlib.sha1(
            key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    # Read, then nap: data is waiting at every read, so the sender's send()
    # seldom has to wake us (which would bill a wake-up to the sender), and
    # 200 us of quotes is far less than the socket buffer.
    buf = bytearray(1 << 20)
    while sock.recv_into(buf):
        time.sleep(args.peer_nap)


# ---------------------------------------------------------------------------
# The sender: the measured process
# ---------------------------------------------------------------------------

def make_steps(variant: str, transport, quotes: list[dict]):
    """A function that does ``n`` encode (+ send) steps of ``variant``."""
    import msgspec
    picows = import_picows()
    TEXT = picows.WSMsgType.TEXT
    send = transport.send
    send_reuse = transport.send_reuse_external_bytearray
    encoder = msgspec.json.Encoder()
    encode, encode_into = encoder.encode, encoder.encode_into
    dumps = json.dumps
    cycle, islice = itertools.cycle, itertools.islice
    source = cycle(quotes)
    prebuilt = cycle([json.dumps(d).encode() for d in quotes])
    buf = bytearray(256)

    if variant == "json":
        def steps(n):
            for d in islice(source, n):
                send(TEXT, dumps(d).encode())
    elif variant == "msgspec":
        def steps(n):
            for d in islice(source, n):
                send(TEXT, encode(d))
    elif variant == "msgspec-into":
        def steps(n):
            for d in islice(source, n):
                encode_into(d, buf, HEADROOM)
                send_reuse(TEXT, buf, HEADROOM)
    elif variant == "prebuilt":
        def steps(n):
            for b in islice(prebuilt, n):
                send(TEXT, b)
    elif variant == "json-encode":
        def steps(n):
            for d in islice(source, n):
                dumps(d).encode()
    elif variant == "msgspec-encode":
        def steps(n):
            for d in islice(source, n):
                encode(d)
    elif variant == "msgspec-into-encode":
        def steps(n):
            for d in islice(source, n):
                encode_into(d, buf, HEADROOM)
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    return steps


async def sender_main(args) -> None:
    pin(args.cpu)
    picows = import_picows()
    loop = asyncio.get_running_loop()
    connected = loop.create_future()
    state = {"paused": 0, "resumed": None}

    class Listener(picows.WSListener):
        def on_ws_connected(self, transport):
            if not connected.done():
                connected.set_result(transport)

        def pause_writing(self):
            state["paused"] += 1
            state["resumed"] = loop.create_future()

        def resume_writing(self):
            if state["resumed"] is not None and not state["resumed"].done():
                state["resumed"].set_result(None)

    peer_cmd = [sys.executable, os.path.abspath(__file__), "--role", "peer",
                "--side", args.side, "--peer-nap", str(args.peer_nap)] + (
                    ["--cpu", str(args.peer_cpu)]
                                        if args.peer_cpu is not None else [])
    if args.side == "server":
        server = await picows.ws_create_server(lambda *_: Listener(), HOST, 0)
        port = server.sockets[0].getsockname()[1]
        peer = subprocess.Popen(peer_cmd + ["--port", str(port)], stdout=subprocess.PIPE,
                                text=True)
    else:
        peer = subprocess.Popen(peer_cmd, stdout=subprocess.PIPE, text=True)
        port = int(await loop.run_in_executor(None, expect, peer, "PORT "))
        await picows.ws_connect(Listener, f"ws://{HOST}:{port}/")
    try:
        transport = await asyncio.wait_for(connected, 30)
        stream = _quotes.quotes()
        quotes = [next(stream) for _ in range(500)]
        steps = {v: make_steps(v, transport, quotes) for v in args.variants.split(",")}
        results: dict = {v: [] for v in steps}
        names = list(steps)
        for rep in range(args.repeats):
            # Rotate the order so no variant always runs first.
            for v in names[rep % len(names):] + names[:rep % len(names)]:
                step = steps[v]
                step(BATCH)  # warm-up
                await asyncio.sleep(0)
                cpu0, wall0 = time.thread_time_ns(), time.perf_counter_ns()
                left = args.count
                while left > 0:
                    step(min(BATCH, left))
                    left -= BATCH
                    await asyncio.sleep(0)
                    if state["resumed"] is not None and not state["resumed"].done():
                        await state["resumed"]
                cpu1, wall1 = time.thread_time_ns(), time.perf_counter_ns()
                results[v].append(((cpu1 - cpu0) / args.count, (wall1 - wall0) / args.count))
        print("RESULT " + json.dumps({"results": results, "paused": state["paused"],
                                      "version": getattr(picows, "__version__", "?")}),
              flush=True)
        transport.disconnect()
        await asyncio.wait_for(transport.wait_disconnected(), 10)
    finally:
        try:
            peer.wait(10)
        except subprocess.TimeoutExpired:
            peer.kill()
            peer.wait()


# ---------------------------------------------------------------------------
# Parent
# ---------------------------------------------------------------------------

def sender_cmd(args, side: str, variants: str, count: int, repeats: int) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), "--role", "sender", "--side", side,
            "--variants", variants, "--count", str(count), "--repeats", str(repeats),
            "--loop", args.loop, "--peer-nap", str(args.peer_nap)] + (
                ["--cpu", "0", "--peer-cpu", "1"] if args.pin else [])


def run_sender(cmd: list[str], env=None) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800,
                          check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"sender failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")


_TOTAL = re.compile(r"^(?:summary|totals):\s+([\d,]+)", re.M)


def instructions(args, side: str, variant: str, n1: int, n2: int) -> float:
    """User-space instructions per message of ``variant``, by callgrind."""
    totals = []
    with tempfile.TemporaryDirectory(prefix="picows-json-send-") as tmp:
        for n in (n1, n2):
            out = os.path.join(tmp, f"cg.{n}")
            cmd = (["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
                   + sender_cmd(args, side, variant, n, 1))
            # A fixed hash seed: dict layouts, and so a few instructions per
            # message, otherwise change from run to run.
            run_sender(cmd, dict(os.environ, PYTHONHASHSEED="0"))
            with open(out) as f:
                totals.append(int(_TOTAL.search(f.read()).group(1).replace(",", "")))
    return (totals[1] - totals[0]) / (n2 - n1)


def report(args, side: str, res: dict) -> str:
    results = res["results"]
    # Sends against json's send, encodings alone against json's encoding alone.
    bases = {kind: statistics.median(c for c, _ in results[kind])
             for kind in ("json", "json-encode") if kind in results}
    out = [f"### {side} side sends ({args.loop}, "
           f"{'sender on CPU 0, peer on CPU 1' if args.pin else 'not pinned'})", "",
           f"Nanoseconds per message, median (min..max) over {args.repeats} repeats of "
           f"{args.count:,} messages; CPU = the sender thread's user + kernel time; "
           "the *-encode rows encode only and are compared with json-encode.", "",
           "| variant | CPU ns/message | wall ns/message | json's CPU / this |",
           "|---|--:|--:|--:|"]
    for v, runs in results.items():
        cpu = [c for c, _ in runs]
        wall = [w for _, w in runs]
        cell = (f"{statistics.median(cpu):,.0f} ({min(cpu):,.0f}..{max(cpu):,.0f}) | "
                f"{statistics.median(wall):,.0f}")
        base = bases.get("json-encode" if v.endswith("-encode") else "json")
        ratio = f"{base / statistics.median(cpu):.2f}" if base else ""
        out.append(f"| {v} | {cell} | {ratio} |")
    out.append("")
    if res["paused"]:
        out.append(f"The sender's writes were paused {res['paused']} times: the socket "
                   "filled and some sends were buffered, not sent.")
        out.append("")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--sides", default="server,client", help="who sends: server, client")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--count", type=int, default=100_000, help="messages per measurement")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats per variant")
    p.add_argument("--loop", default="uvloop", choices=("asyncio", "uvloop"))
    p.add_argument("--pin", action="store_true", help="sender on CPU 0, peer on CPU 1")
    p.add_argument("--instructions", action="store_true",
                   help="also count user-space instructions per message (callgrind)")
    p.add_argument("--rounds", default="2000,12000",
                   help="--instructions: the two message counts N1,N2")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--save", action="store_true",
                   help="also keep the run in benchmarks/results/ (see resultfile.py)")
    # Child roles.
    p.add_argument("--role", choices=("bench", "sender", "peer"), default="bench",
                   help=argparse.SUPPRESS)
    p.add_argument("--side", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    p.add_argument("--peer-cpu", type=int, help=argparse.SUPPRESS)
    p.add_argument("--peer-nap", type=float, default=0.0002,
                   help="seconds the peer sleeps after each read (0: it waits in recv, "
                        "and the sender's send() pays for waking it)")
    args = p.parse_args()
    if args.role == "peer":
        role_peer(args)
        return 0
    if args.role == "sender":
        loop_run(args.loop, sender_main(args))
        return 0

    import echo  # machine description, load check
    info = echo.machine_info()
    cmd = "python benchmarks/json_send.py " + " ".join(sys.argv[1:])
    header = [f"Command: `{cmd}`",
              f"Machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}, "
              f"{info['platform']}",
              f"Other load before the run: {info['busy_cpus']} CPUs busy"
              + (" -- the machine is not idle, the numbers are skewed"
                 if info["busy_cpus"] > 0.3 else "")]
    import msgspec
    sections, doc = [], {"command": cmd, "machine": info, "sides": {}}
    for side in args.sides.split(","):
        res = run_sender(sender_cmd(args, side, args.variants, args.count, args.repeats))
        doc["sides"][side] = res
        sections.append(report(args, side, res))
        print(sections[-1], file=sys.stderr, flush=True)
    header.append(f"Versions: picows {res['version']}, msgspec {msgspec.__version__}")
    if args.instructions:
        n1, n2 = (int(x) for x in args.rounds.split(","))
        rows = ["### Instructions per message (callgrind, user space, sender only)", "",
                f"(instructions with {n2:,} messages - with {n1:,}) / {n2 - n1:,}. "
                "Not native counts: interpreter- and float-heavy code (json.dumps) is "
                "inflated most under callgrind (see the module's docstring); compare "
                "the variants by CPU time.", "",
                "| variant | " + " | ".join(f"{s} side" for s in args.sides.split(",")) + " |",
                "|---|" + "--:|" * len(args.sides.split(","))]
        doc["instructions"] = {}
        for v in args.variants.split(","):
            cells = []
            for side in args.sides.split(","):
                k = instructions(args, side, v, n1, n2)
                doc["instructions"][f"{side} {v}"] = k
                cells.append(f"{k:,.0f}")
                print(f"instructions {side} {v}: {k:,.0f}", file=sys.stderr, flush=True)
            rows.append(f"| {v} | " + " | ".join(cells) + " |")
        sections.append("\n".join(rows) + "\n")
    text = "\n".join(header) + "\n\n" + "\n".join(sections)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    if args.save:
        import resultfile
        for path in resultfile.save("json-send", f"JSON send, {args.loop}", text, doc,
                                    name="json-send"):
            print(f"saved {os.path.relpath(path)}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Compression echo benchmark: permessage-deflate on both ends, JSON quotes.

One connection on 127.0.0.1. The client sends a TEXT message of about 2 KiB
of JSON market quotes (a batch of symbol/bid/ask/sizes/timestamp records,
fresh numbers in every message), waits for the whole echo, sends the next
one, for a fixed time after a warm-up. Both ends compress with
permessage-deflate, context takeover on, each library's defaults unless
told otherwise. The messages (300 distinct ones by default) come from a
seeded RNG and are built before the connection opens, so their generation
is not measured; the client cycles through them.

Reported per contender: round trips per second; the bytes on the wire per
message byte in each direction (the compression ratio, see below); and CPU
time per round trip of the client and the server processes (every thread,
user + kernel, from /proc/PID/task/*/schedstat: aiohttp may compress in a
thread).

The ratio is read from the kernel, not from the libraries: at the start and
at the end of the measurement the client reads TCP_INFO of its connected
socket (``tcpi_bytes_sent``, ``tcpi_bytes_received``: TCP payload bytes, so
frame headers and masks included) and divides by the message bytes sent in
between. The socket is found by its peer address among the client's file
descriptors, so every library is measured the same way without hooks.

Contenders: ``picows`` (``enable_compression=True``), ``picows-l<L>`` for
each of ``--levels`` (``enable_compression=picows.WSCompression(level=L)``),
``picows-zlib`` / ``picows-isal`` / ``picows-l<L>-zlib`` (that backend),
``picows.websockets`` and ``websockets`` (``compression="deflate"``),
``picows-pypi.websockets`` (the original picows 2.3.1's websockets layer, run
by ``--orig-python``; the original's core has no permessage-deflate),
``aiohttp`` (client ``compress=15``, server ``compress=True``).

    python benchmarks/compression.py --pin 0
    python benchmarks/compression.py --pin 0 --levels 1,6 --repeats 5
    python benchmarks/compression.py --pin 0 --orig-python /tmp/orig-venv/bin/python --save

The process model, the interleaving of contenders, pinning and the load
check are echo.py's (its Child, pins and machine_info are reused).
The benchmark reports; it never fails on a number.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import struct
import sys
import time

import _quotes
import echo
from contenders import Window, _machine_busy_ns, aiohttp_server, import_picows

HOST = "127.0.0.1"
OURS = "picows"
DEFAULT_LIBS = "picows,picows.websockets,websockets,aiohttp"
# issue 16: at least 1.2x aiohttp's round trips/s, with a comparable ratio.
TARGET_AIOHTTP = 1.2


# ---------------------------------------------------------------------------
# The messages
# ---------------------------------------------------------------------------

def make_messages(count: int = 300, size: int = 2048, seed: int = 16) -> list[bytes]:
    """``count`` JSON documents of at most ``size`` bytes (a little under it):
    ``{"type":"quotes","seq":n,"data":[quote, ...]}`` with the quotes of
    _quotes.py. The same seed gives the same messages in every process."""
    stream = _quotes.quotes(seed)
    out = []
    for seq in range(count):
        batch: list[dict] = []
        doc = {"type": "quotes", "seq": seq, "data": batch}
        text = json.dumps(doc, separators=(",", ":"))
        while True:
            batch.append(next(stream))
            longer = json.dumps(doc, separators=(",", ":"))
            if len(longer) > size:
                batch.pop()
                break
            text = longer
        out.append(text.encode())
    return out


def payload_bytes(sizes: list[int], first: int, end: int) -> int:
    """Bytes of messages number first..end-1 when the client cycles through
    messages of these sizes."""
    total = sum(sizes)

    def upto(k):
        return (k // len(sizes)) * total + sum(sizes[: k % len(sizes)])
    return upto(end) - upto(first)


# ---------------------------------------------------------------------------
# Client side: the measurement window with a tap on the socket
# ---------------------------------------------------------------------------

def _process_cpu_ns(pid) -> int:
    """CPU time of every thread of ``pid`` so far, in ns (0 when unknown)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # a thread that just ended
    except OSError:
        return 0
    return total


# struct tcp_info (linux/tcp.h): tcpi_bytes_received at 128 (Linux 4.1),
# tcpi_bytes_sent at 200 (Linux 4.19); both u64.
_TCPI_BYTES_RECEIVED = 128
_TCPI_BYTES_SENT = 200


def find_connected_socket(port: int) -> socket.socket | None:
    """A duplicate of this process's TCP socket connected to HOST:port."""
    for name in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(int(name)))
        except (OSError, ValueError):
            continue
        try:
            if sock.type == socket.SOCK_STREAM and sock.getpeername()[:2] == (HOST, port):
                return sock
        except OSError:
            pass
        sock.close()
    return None


def wire_bytes(sock: socket.socket | None) -> tuple[int, int] | None:
    """(bytes sent, bytes received) of the connection, from TCP_INFO."""
    if sock is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except OSError:
        return None
    if len(info) < _TCPI_BYTES_SENT + 8:
        return None
    return (struct.unpack_from("Q", info, _TCPI_BYTES_SENT)[0],
            struct.unpack_from("Q", info, _TCPI_BYTES_RECEIVED)[0])


class TappedWindow(Window):
    """echo's measurement window, plus the socket's byte counters at both
    ends of it, and CPU time of whole processes instead of main threads.

    The measurement starts once the warm-up is over and the connection
    exists (a slow start, aiohttp's on a busy machine, can take longer than
    the warm-up) and lasts ``duration`` from then."""

    def __init__(self, loop, warmup, duration, server_pid, port):
        super().__init__(loop, warmup, duration, server_pid)
        self.duration = duration
        self.port = port
        self.sock: socket.socket | None = None
        self.wire0 = self.wire1 = None
        self.tries = 0

    def _cpu(self) -> tuple:
        return (_process_cpu_ns(os.getpid()),
                _process_cpu_ns(self.server_pid) if self.server_pid else 0,
                _machine_busy_ns())

    def _begin(self) -> None:
        if self.sock is None:
            self.sock = find_connected_socket(self.port)
            if self.sock is None and self.tries < 200:
                self.tries += 1
                self.loop.call_later(0.05, self._begin)
                return
        self.wire0 = wire_bytes(self.sock)
        super()._begin()
        self.loop.call_later(self.duration, self._end_tapped)

    def _end(self) -> None:
        pass  # Window's own timer; the end is _end_tapped, timed from _begin

    def _end_tapped(self) -> None:
        self.wire1 = wire_bytes(self.sock)
        super()._end()
        if self.sock is not None:
            self.sock.close()


# ---------------------------------------------------------------------------
# Servers and clients
# ---------------------------------------------------------------------------

def picows_compression(lib: str, picows):
    """The enable_compression argument for a picows contender: ``picows``
    is True; ``picows-l<L>``, ``picows-zlib``, ``picows-isal`` and
    combinations (``picows-l1-zlib``) choose WSCompression's level and
    backend."""
    if lib in (OURS, "picows-pypi"):
        return True
    # WSCompression (issue 16) is new; a picows without it cannot run the
    # per-setting contenders.
    if not hasattr(picows, "WSCompression"):
        raise SystemExit(f"{lib}: this picows has no WSCompression")
    kwargs: dict = {}
    for part in lib[len("picows-"):].split("-"):
        if part in ("zlib", "isal"):
            kwargs["backend"] = part
        elif part.startswith("l") and part[1:].isdigit():
            kwargs["level"] = int(part[1:])
        else:
            raise SystemExit(f"unknown picows contender {lib!r}")
    return picows.WSCompression(**kwargs)


def picows_lib(lib: str) -> str:
    return "picows-pypi" if lib == "picows-pypi" else "picows"


async def start_server(lib: str):
    if lib.startswith("picows") and not lib.endswith(".websockets"):
        picows = import_picows(picows_lib(lib))
        CLOSE = picows.WSMsgType.CLOSE

        class Echo(picows.WSListener):
            def on_ws_frame(self, transport, frame):
                if frame.msg_type == CLOSE:
                    transport.send_close(frame.get_close_code())
                    transport.disconnect()
                    return
                transport.send(frame.msg_type, frame.get_payload_as_memoryview())

        server = await picows.ws_create_server(
            lambda *_request: Echo(), HOST, 0,
            enable_compression=picows_compression(lib, picows))
        return server, server.sockets[0].getsockname()[1]
    if lib in ("websockets", "picows.websockets", "picows-pypi.websockets"):
        if lib == "websockets":
            from websockets.asyncio.server import serve
        else:
            import_picows("picows" if lib == "picows.websockets" else "picows-pypi")
            from picows.websockets import serve

        async def echo_handler(ws):
            async for msg in ws:
                await ws.send(msg)

        server = await serve(echo_handler, HOST, 0, compression="deflate", max_size=None)
        return server, server.sockets[0].getsockname()[1]
    if lib == "aiohttp":
        runner = await aiohttp_server(HOST, 0, None, compress=True)
        return runner, runner.addresses[0][1]
    raise SystemExit(f"unknown contender {lib!r}")


async def run_client(lib: str, port: int, messages: list[bytes], window: Window) -> None:
    url = f"ws://{HOST}:{port}/"
    count = len(messages)
    if lib.startswith("picows") and not lib.endswith(".websockets"):
        picows = import_picows(picows_lib(lib))
        TEXT = picows.WSMsgType.TEXT

        class Client(picows.WSListener):
            def __init__(self):
                self.sent = 0
                self.expected = len(messages[0])
                self.received = 0

            def on_ws_connected(self, transport):
                transport.send(TEXT, messages[0])

            def on_ws_frame(self, transport, frame):
                self.received += len(frame.get_payload_as_memoryview())
                if self.received < self.expected:
                    return
                window.count += 1
                if window.stop:
                    window.finish()
                    return
                self.sent += 1
                message = messages[self.sent % count]
                self.expected = len(message)
                self.received = 0
                transport.send(TEXT, message)

            def on_ws_disconnected(self, transport):
                window.finish()

        transport, _ = await picows.ws_connect(
            Client, url, enable_compression=picows_compression(lib, picows))
        await window.done
        transport.disconnect()
        return
    # The others take and give str for TEXT frames, as their users do.
    texts = [m.decode() for m in messages]
    if lib in ("websockets", "picows.websockets", "picows-pypi.websockets"):
        if lib == "websockets":
            from websockets.asyncio.client import connect
        else:
            import_picows("picows" if lib == "picows.websockets" else "picows-pypi")
            from picows.websockets import connect
        async with connect(url, compression="deflate", max_size=None) as ws:
            send, recv = ws.send, ws.recv
            i = 0
            while True:
                await send(texts[i % count])
                await recv()
                i += 1
                window.count += 1
                if window.stop:
                    break
        window.finish()
        return
    if lib == "aiohttp":
        import aiohttp

        async with aiohttp.ClientSession() as session, session.ws_connect(
                url, compress=15, max_msg_size=0) as ws:
            send, recv = ws.send_str, ws.receive
            i = 0
            while True:
                await send(texts[i % count])
                msg = await recv()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"aiohttp client got {msg.type}")
                i += 1
                window.count += 1
                if window.stop:
                    break
        window.finish()
        return
    raise SystemExit(f"unknown contender {lib!r}")


def library_version(lib: str) -> str:
    base = {"picows.websockets": "picows", "picows-pypi.websockets": "picows-pypi"}.get(lib, lib)
    if base.startswith("picows") and base != "picows-pypi":
        base = "picows"
    try:
        if base.startswith("picows"):
            picows = import_picows(base)
            where = os.path.dirname(os.path.dirname(os.path.abspath(picows.__file__)))
            return f"{getattr(picows, '__version__', '?')} from {where}"
        return getattr(__import__(base), "__version__", "?")
    except Exception as exc:  # noqa: BLE001 - only for the report
        return f"? ({exc})"


def role_server(args) -> None:
    echo.pin_self(args.cpu)

    async def main():
        _server, port = await start_server(args.lib)
        print(f"PORT {port} {os.getpid()} {library_version(args.lib)}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    echo.run_loop(args.loop, main)


def role_client(args) -> None:
    echo.pin_self(args.cpu)
    messages = make_messages(args.messages, args.size)

    async def main():
        loop = asyncio.get_running_loop()
        window = TappedWindow(loop, args.warmup, args.duration, args.server_pid, args.port)
        await asyncio.wait_for(run_client(args.lib, args.port, messages, window),
                               timeout=args.warmup + args.duration + 70)
        if not window.stop:
            raise RuntimeError("connection closed before the end of the measurement")
        sizes = [len(m) for m in messages]
        result = window.result(sum(sizes) / len(sizes))
        result["payload_bytes"] = payload_bytes(sizes, window.n0, window.n1)
        if window.wire0 and window.wire1:
            result["wire_sent"] = window.wire1[0] - window.wire0[0]
            result["wire_received"] = window.wire1[1] - window.wire0[1]
        return result

    result = echo.run_loop(args.loop, main)
    print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------
# Parent side
# ---------------------------------------------------------------------------

def measure(args, lib: str) -> dict:
    scpu, ccpu = echo.pins(args)
    python = args.orig_python if lib.startswith("picows-pypi") else sys.executable
    base = [python, os.path.abspath(__file__), "--lib", lib, "--loop", args.loop]
    env = echo.child_env("picows-pypi" if lib.startswith("picows-pypi") else lib)
    server = echo.Child(base + ["--role", "server"] + (["--cpu", scpu] if scpu else []), env)
    try:
        port, server_pid, version = server.expect("PORT", 60).split(" ", 2)
        client = echo.Child(base + ["--role", "client", "--port", port, "--server-pid", server_pid,
                                    "--messages", str(args.messages), "--size", str(args.size),
                                    "--warmup", str(args.warmup),
                                    "--duration", str(args.duration)]
                            + (["--cpu", ccpu] if ccpu else []), env)
        try:
            result = json.loads(client.expect("RESULT", args.warmup + args.duration + 120))
        finally:
            client.stop()
    finally:
        server.stop()
    result["version"] = version
    return result


def contender_list(args) -> list[str]:
    libs = [c.strip() for c in args.libs.split(",") if c.strip()]
    if args.levels:
        at = libs.index(OURS) + 1 if OURS in libs else 0
        libs[at:at] = [f"picows-l{int(level)}" for level in args.levels.split(",")]
    # The original's core has no permessage-deflate; its websockets layer has.
    if args.orig_python and not any(c.startswith("picows-pypi") for c in libs):
        at = libs.index("picows.websockets") + 1 if "picows.websockets" in libs else len(libs)
        libs.insert(at, "picows-pypi.websockets")
    if any(c.startswith("picows-pypi") for c in libs) and not args.orig_python:
        raise SystemExit("picows-pypi needs --orig-python /path/to/venv/bin/python")
    return libs


def run(args) -> dict:
    libs = contender_list(args)
    runs: dict = {lib: [] for lib in libs}
    versions: dict = {}
    errors: list = []
    total = args.repeats * len(libs)
    k = 0
    started = time.monotonic()
    for rep in range(args.repeats):
        order = libs[rep % len(libs):] + libs[:rep % len(libs)]
        for lib in order:
            k += 1
            try:
                r = measure(args, lib)
                runs[lib].append(r)
                versions[lib] = r["version"]
                msg = f"{echo.fmt_rate(r['rps'])} rt/s"
                if r.get("wire_sent") is not None:
                    msg += (f", wire {r['wire_sent'] / r['payload_bytes']:.3f} / "
                            f"{r['wire_received'] / r['payload_bytes']:.3f}")
                if (r.get("other_cpus") or 0) > echo.OTHER_LOAD_WARN:
                    msg += f" (other load {r['other_cpus']:.2f} CPUs!)"
            except Exception as exc:  # noqa: BLE001 - report and go on
                errors.append({"contender": lib, "repeat": rep, "error": str(exc)})
                msg = f"ERROR {str(exc).splitlines()[0]}"
            print(f"[{k}/{total} {time.monotonic() - started:.0f}s] #{rep + 1} {lib}: {msg}",
                  file=sys.stderr, flush=True)
    return {"libs": libs, "runs": runs, "versions": versions, "errors": errors}


def _median(values):
    good = [v for v in values if v is not None]
    return statistics.median(good) if good else None


def report(args, res, messages) -> tuple[str, list]:
    sizes = [len(m) for m in messages]
    out = [f"Messages: {len(messages)} distinct JSON quote batches, "
           f"{min(sizes)}..{max(sizes)} bytes (mean {statistics.mean(sizes):.0f}), "
           f"sent as TEXT; {args.loop}; "
           f"{'pinned to CPU ' + args.pin if args.pin else 'not pinned'}.",
           "",
           f"Round trips per second, median (min..max) over {args.repeats} repeats; "
           "wire/message = TCP payload bytes (TCP_INFO of the client's socket) over "
           "message bytes, client to server and back (median); CPU = microseconds per "
           "round trip, server + client, every thread (median); its CPU/ours above 1: "
           "ours costs less (on a busy machine steadier than the rate).",
           "",
           "| contender | round trips/s | ours/it | wire/message c->s | wire/message s->c "
           "| CPU us/rt server + client | its CPU/ours |",
           "|---|--:|--:|--:|--:|--:|--:|"]
    records = []
    ours = [r["rps"] for r in res["runs"].get(OURS, [])]
    ours_cpu = _median([r["server_cpu_us"] + r["client_cpu_us"] for r in res["runs"].get(OURS, [])
                        if r.get("server_cpu_us") and r.get("client_cpu_us")])
    for lib in res["libs"]:
        rs = res["runs"][lib]
        if not rs:
            out.append(f"| {lib} | error | | | | | |")
            continue
        rps = [r["rps"] for r in rs]
        s = echo.summarize(rps)
        up = _median([r["wire_sent"] / r["payload_bytes"] if r.get("wire_sent") is not None
                      else None for r in rs])
        down = _median([r["wire_received"] / r["payload_bytes"]
                        if r.get("wire_received") is not None else None for r in rs])
        scpu = _median([r.get("server_cpu_us") for r in rs])
        ccpu = _median([r.get("client_cpu_us") for r in rs])
        ratio = echo.ratio_cell(ours, rps)[1] if ours and lib != OURS else ""
        out.append(f"| {lib} | {echo.fmt_rate(s['median'])} ({echo.fmt_rate(s['min'])}.."
                   f"{echo.fmt_rate(s['max'])}) | {ratio} | "
                   + (f"{up:.3f}" if up is not None else "n/a") + " | "
                   + (f"{down:.3f}" if down is not None else "n/a") + " | "
                   + (f"{scpu:.1f} + {ccpu:.1f}" if scpu is not None and ccpu is not None
                      else "n/a") + " | "
                   + (f"{(scpu + ccpu) / ours_cpu:.2f}" if ours_cpu and lib != OURS
                      and scpu is not None and ccpu is not None else "") + " |")
        records.append({"contender": lib, "runs": rs, "median_rps": s["median"],
                        "wire_ratio_sent": up, "wire_ratio_received": down,
                        "server_cpu_us": scpu, "client_cpu_us": ccpu})
    out.append("")
    if ours and res["runs"].get("aiohttp"):
        med, cell = echo.ratio_cell(ours, [r["rps"] for r in res["runs"]["aiohttp"]])
        if med is not None:
            theirs = records[[r["contender"] for r in records].index("aiohttp")]
            cpu_note = ""
            if ours_cpu and theirs["server_cpu_us"] and theirs["client_cpu_us"]:
                cpu_note = (f"; aiohttp's CPU per round trip / ours: "
                            f"{(theirs['server_cpu_us'] + theirs['client_cpu_us']) / ours_cpu:.2f}")
            out.append(f"Target (issue 16): picows >= {TARGET_AIOHTTP}x aiohttp with a "
                       f"comparable ratio: {cell}, "
                       f"{'met' if med >= TARGET_AIOHTTP else 'BELOW'} on the rate{cpu_note}.")
            out.append("")
    other = [r["other_cpus"] for rs in res["runs"].values() for r in rs
             if r.get("other_cpus") is not None]
    if other:
        busy = [x for x in other if x > echo.OTHER_LOAD_WARN]
        out.append(f"Other processes' load during the measurements: median "
                   f"{statistics.median(other):.2f} CPUs, max {max(other):.2f}; "
                   f"{len(busy)} of {len(other)} measurements above "
                   f"{echo.OTHER_LOAD_WARN} CPUs"
                   + (" -- those numbers are skewed." if busy else "."))
        out.append("")
    for e in res["errors"]:
        out.append(f"- error: {e['contender']} #{e['repeat'] + 1}: "
                   f"{e['error'].replace(chr(10), ' / ')}")
    return "\n".join(out), records


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Compression echo benchmark: permessage-deflate, ~2 KiB JSON quotes",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--libs", default=DEFAULT_LIBS,
                   help="contenders: picows, picows-l<L>, picows.websockets, "
                        "picows-pypi.websockets, websockets, aiohttp")
    p.add_argument("--levels", help="add picows-l<L> for each level, e.g. 1,6 "
                                    "(needs picows.WSCompression)")
    p.add_argument("--loop", default="uvloop", choices=("asyncio", "uvloop"))
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats per contender")
    p.add_argument("--duration", type=float, default=2.0, help="seconds measured per run")
    p.add_argument("--warmup", type=float, default=0.5, help="seconds of warm-up per run")
    p.add_argument("--messages", type=int, default=300, help="distinct messages")
    p.add_argument("--size", type=int, default=2048, help="message size, at most")
    p.add_argument("--pin", metavar="CPU", help="'N': server and client on CPU N; "
                                                "'N,M': server on N, client on M")
    p.add_argument("--orig-python", metavar="PYTHON",
                   help="interpreter of a venv with the PyPI picows; adds "
                        "'picows-pypi.websockets'")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--save", action="store_true",
                   help="also keep the run in benchmarks/results/ (see resultfile.py)")
    p.add_argument("--role", choices=("bench", "server", "client"), default="bench",
                   help=argparse.SUPPRESS)
    p.add_argument("--lib", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    p.add_argument("--cpu", help=argparse.SUPPRESS)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.role == "server":
        role_server(args)
        return 0
    if args.role == "client":
        role_client(args)
        return 0
    if args.pin:
        for cpu in args.pin.split(","):
            if int(cpu) not in os.sched_getaffinity(0):
                raise SystemExit(f"--pin {args.pin}: CPU {cpu} is not available")
    info = echo.machine_info()
    cmd = "python benchmarks/compression.py " + " ".join(sys.argv[1:] if argv is None else argv)
    res = run(args)
    text, records = report(args, res, make_messages(args.messages, args.size))
    header = [f"Command: `{cmd}`",
              f"Machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}, "
              f"{info['platform']}",
              f"Other load before the run: {info['busy_cpus']} CPUs busy"
              + (" -- the machine is not idle, the numbers are skewed"
                 if info["busy_cpus"] > 0.3 else ""),
              "Versions: " + ", ".join(f"{c} {v}" for c, v in res["versions"].items()),
              f"Each run: {args.warmup}s warm-up + {args.duration}s measured, "
              f"{args.repeats} repeats, contenders interleaved"]
    print("\n".join(header) + "\n\n" + text)
    doc = {"command": cmd, "machine": info, "pin": args.pin, "loop": args.loop,
           "compression": records, "errors": res["errors"], "versions": res["versions"],
           "duration": args.duration, "warmup": args.warmup, "repeats": args.repeats}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    if args.save:
        import resultfile
        where = f"pinned to CPU {args.pin}" if args.pin else "not pinned"
        for path in resultfile.save("compression", f"Compression echo, {args.loop}, {where}",
                                    "\n".join(header) + "\n\n" + text, doc,
                                    name="compression-echo"):
            print(f"saved {os.path.relpath(path)}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Echo benchmark: picows vs websockets vs aiohttp vs a raw asyncio Protocol.

One connection on 127.0.0.1; the client sends a message of S bytes, waits for
the whole echo, and repeats for a fixed time after a warm-up. Every contender
runs its server and its client in two child processes (the same library on
both ends), started afresh for every measurement; contenders are interleaved
(every repeat runs each contender once, in a rotating order) and the median
and min..max over the repeats are reported with the ratios of ours to the
others. See benchmarks/README.md.

The benchmark reports; it never fails on a number.

  python benchmarks/echo.py                      # all sizes, asyncio + uvloop
  python benchmarks/echo.py --pin 0 --loops uvloop --sizes 256,1MiB
  python benchmarks/echo.py --tls --orig-python /tmp/orig-venv/bin/python
  python benchmarks/echo.py --memory 10000       # server RSS per idle connection
  python benchmarks/echo.py --quick              # about a minute
  python benchmarks/echo.py --pin 0 --save       # and keep it in benchmarks/results/

Roles used internally: ``--role server`` prints ``PORT <n> <pid> <version>`` once
listening;
``--role client`` prints ``RESULT <json>``; ``--role memclient`` opens idle
connections and prints ``READY <ok> <failed>``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
HOST = "127.0.0.1"

SIZE_NAMES = {64: "64 B", 256: "256 B", 8192: "8 KiB", 102400: "100 KiB", 1048576: "1 MiB"}
DEFAULT_SIZES = "64,256,8KiB,100KiB,1MiB"
DEFAULT_LIBS = "raw,picows,websockets,picows.websockets,aiohttp"
OURS = "picows"

# Targets the library is tuned against (ours / other, by the median). They are
# printed next to the measured ratios, never asserted.
TARGETS_UVLOOP_RAW = {64: 0.95, 256: 0.95, 8192: 0.95, 102400: 0.85, 1048576: 0.80}
TARGET_UVLOOP_WEBSOCKETS = 2.5
TARGET_UVLOOP_AIOHTTP = 1.3
TARGET_ASYNCIO_RAW_256 = 1.7
TARGET_TLS_AIOHTTP = 1.5
# picows.websockets against picows 2.3.1's own layer (issue 15): 1.1x on
# uvloop, not slower on the default loop.
TARGETS_LAYER = {("tcp", "uvloop"): 1.1, ("tcp", "asyncio"): 1.0}
TARGET_IDLE_KIB = 24.0
# A measurement during which other processes used more than this many CPUs'
# worth of time is flagged in the report.
OTHER_LOAD_WARN = 0.25


def parse_size(text: str) -> int:
    t = text.strip().lower().replace(" ", "")
    for suffix, mult in (("kib", 1024), ("mib", 1 << 20), ("kb", 1000), ("mb", 10**6),
                         ("k", 1024), ("m", 1 << 20), ("b", 1)):
        if t.endswith(suffix):
            return int(float(t[: -len(suffix)]) * mult)
    return int(t)


def size_name(size: int) -> str:
    if size in SIZE_NAMES:
        return SIZE_NAMES[size]
    if size % (1 << 20) == 0:
        return f"{size >> 20} MiB"
    if size % 1024 == 0:
        return f"{size >> 10} KiB"
    return f"{size} B"


# ---------------------------------------------------------------------------
# Child side: pinning, loop, TLS, limits
# ---------------------------------------------------------------------------

def pin_self(cpu: str | None) -> None:
    if cpu is not None and cpu != "":
        os.sched_setaffinity(0, {int(c) for c in cpu.split("+")})


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run_loop(kind: str, coro_fn):
    if kind == "uvloop":
        import uvloop
        loop_factory = uvloop.new_event_loop
    elif kind == "asyncio":
        loop_factory = asyncio.new_event_loop
    else:
        raise SystemExit(f"unknown loop {kind!r}")
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(coro_fn())
    loop = loop_factory()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(coro_fn())
    finally:
        loop.close()


def server_ssl_context(certdir: str | None):
    if not certdir:
        return None
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(certdir, "cert.pem"), os.path.join(certdir, "key.pem"))
    return ctx


def client_ssl_context(certdir: str | None):
    if not certdir:
        return None
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(certdir, "cert.pem"))
    return ctx


def make_cert(certdir: str) -> str:
    """Self-signed certificate for 127.0.0.1, made at run time.

    Uses trustme when installed, the openssl command otherwise.
    """
    cert, key = os.path.join(certdir, "cert.pem"), os.path.join(certdir, "key.pem")
    try:
        import trustme
    except ImportError:
        trustme = None
    if trustme is not None:
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        leaf.private_key_pem.write_to_path(key)
        with open(cert, "wb") as f:
            f.writelines(blob.bytes() for blob in leaf.cert_chain_pems)
            f.write(ca.cert_pem.bytes())
        return "trustme"
    if shutil.which("openssl") is None:
        raise SystemExit("--tls needs the trustme package or the openssl command")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return "openssl"


def role_server(args) -> None:
    pin_self(args.cpu)
    raise_nofile()
    import contenders

    async def main():
        _server, port = await contenders.start_server(
            args.lib, HOST, 0, server_ssl_context(args.certdir))
        print(f"PORT {port} {os.getpid()} {contenders.library_version(args.lib)}",
              flush=True)
        # Serve until the parent closes our stdin (or kills us).
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)

    run_loop(args.loop, main)


def role_client(args) -> None:
    pin_self(args.cpu)
    import contenders

    message = os.urandom(args.size)

    async def main():
        loop = asyncio.get_running_loop()
        window = contenders.Window(loop, args.warmup, args.duration, args.server_pid)
        await asyncio.wait_for(
            contenders.run_client(args.lib, HOST, args.port, client_ssl_context(args.certdir),
                                  message, window),
            timeout=args.warmup + args.duration + 60)
        if not window.stop:
            raise RuntimeError("connection closed before the end of the measurement")
        return window.result(args.size)

    result = run_loop(args.loop, main)
    print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------
# Memory mode client: many idle connections, as cheap as possible
# ---------------------------------------------------------------------------

HANDSHAKE = (
    "GET / HTTP/1.1\r\n"
    "Host: 127.0.0.1:{port}\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n"
)


class IdleProtocol(asyncio.Protocol):
    """Sends the upgrade request, waits for the 101 response, then idles."""

    def __init__(self, request: bytes | None, done: asyncio.Future):
        self.request = request
        self.done = done
        self.buf = b""

    def connection_made(self, transport):
        self.transport = transport
        if self.request is None:  # raw contender: the TCP connection is all
            self.done.set_result(True)
        else:
            transport.write(self.request)

    def data_received(self, data):
        if self.done.done():
            return
        self.buf += data
        if b"\r\n\r\n" in self.buf:
            ok = self.buf.startswith(b"HTTP/1.1 101")
            self.buf = b""
            self.done.set_result(ok)

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(False)


def role_memclient(args) -> None:
    pin_self(args.cpu)
    limit = raise_nofile()
    if limit < args.connections + 64:
        print(f"WARN RLIMIT_NOFILE is {limit}, fewer than {args.connections} connections",
              file=sys.stderr, flush=True)
    request = None if args.lib == "raw" else HANDSHAKE.format(port=args.port).encode()

    async def main():
        loop = asyncio.get_running_loop()
        ssl_ctx = client_ssl_context(args.certdir)
        sem = asyncio.Semaphore(args.concurrency)
        ok = failed = 0
        keep = []

        async def one(i):
            nonlocal ok, failed
            async with sem:
                done = loop.create_future()
                # Past ~25k connections the ephemeral ports of one source
                # address run out; spread over 127.0.0.x.
                local = (f"127.0.0.{2 + i // 25000}", 0) if args.connections > 25000 else None
                try:
                    tr, _ = await loop.create_connection(
                        lambda: IdleProtocol(request, done), HOST, args.port,
                        ssl=ssl_ctx, local_addr=local)
                    keep.append(tr)
                    if await asyncio.wait_for(done, 30):
                        ok += 1
                    else:
                        failed += 1
                except (OSError, asyncio.TimeoutError):
                    failed += 1

        await asyncio.gather(*(one(i) for i in range(args.connections)))
        print(f"READY {ok} {failed}", flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        for tr in keep:
            tr.abort()

    run_loop(args.loop, main)


# ---------------------------------------------------------------------------
# Parent side: processes
# ---------------------------------------------------------------------------

class Child:
    """A child process whose stdout we read line by line in a thread."""

    def __init__(self, cmd, env=None):
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, text=True)
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.stderr = ""
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_out(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)
            self.cond.notify_all()

    def _read_err(self):
        self.stderr = self.proc.stderr.read()

    def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if line is None:
                        raise RuntimeError(self._failure(f"exited before {prefix}"))
                    if line.startswith(prefix + " "):
                        return line[len(prefix) + 1:]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(self._failure(f"no {prefix} within {timeout:.0f}s"))
                self.cond.wait(left)

    def _failure(self, what: str) -> str:
        time.sleep(0.1)
        tail = (self.stderr or "").strip().splitlines()[-6:]
        return f"{' '.join(self.cmd[1:6])}...: {what}\n    " + "\n    ".join(tail)

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        else:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    @property
    def pid(self) -> int:
        return self.proc.pid


def child_env(contender: str) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONASYNCIODEBUG", None)
    env.pop("PYTHONDEVMODE", None)
    if contender.startswith("picows-pypi"):
        # The reference interpreter must see only its own site-packages.
        env.pop("PYTHONPATH", None)
    return env


def contender_cmd(args, contender: str) -> list:
    # picows-pypi and picows-pypi.websockets: the PyPI release's interpreter.
    python = args.orig_python if contender.startswith("picows-pypi") else sys.executable
    return [python, os.path.abspath(__file__), "--lib", contender]


def pins(args):
    """(server cpu, client cpu) for --pin: 'N' pins both to N, 'N,M' splits."""
    if args.pin is None:
        return None, None
    parts = args.pin.split(",")
    if len(parts) == 1:
        return parts[0], parts[0]
    return parts[0], parts[1]


def measure(args, contender, loop, size, certdir) -> dict:
    scpu, ccpu = pins(args)
    base = contender_cmd(args, contender)
    env = child_env(contender)
    common = ["--loop", loop] + (["--certdir", certdir] if certdir else [])
    wrapper = shlex.split(args.server_wrapper) if args.server_wrapper else []
    server = Child(wrapper + base + ["--role", "server"] + common
                   + (["--cpu", scpu] if scpu else []), env)
    try:
        port_line = server.expect("PORT", 60)
        port, server_pid, version = port_line.split(" ", 2)
        if wrapper:
            server_pid = "0"  # the wrapper's child; not worth finding
        client = Child(base + ["--role", "client", "--port", port, "--server-pid", server_pid,
                               "--size", str(size),
                               "--warmup", str(args.warmup), "--duration", str(args.duration)]
                       + common + (["--cpu", ccpu] if ccpu else []), env)
        try:
            result = json.loads(client.expect("RESULT", args.warmup + args.duration + 120))
        finally:
            client.stop()
        result["version"] = version
        return result
    finally:
        server.stop(60 if wrapper else 5)


# ---------------------------------------------------------------------------
# Parent side: the echo benchmark
# ---------------------------------------------------------------------------

def fmt_rate(x: float) -> str:
    if x >= 100_000:
        return f"{x / 1000:.0f}k"
    if x >= 10_000:
        return f"{x / 1000:.1f}k"
    if x >= 1000:
        return f"{x / 1000:.2f}k"
    return f"{x:.0f}"


def fmt_mbps(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def summarize(values):
    good = [v for v in values if v is not None]
    if not good:
        return None
    return {"median": statistics.median(good), "min": min(good), "max": max(good),
            "n": len(good)}


def ratio_cell(ours_runs, other_runs):
    """Ratio of medians, and min..max of the ratios paired by repeat."""
    a, b = summarize(ours_runs), summarize(other_runs)
    if not a or not b or b["median"] == 0:
        return None, "n/a"
    med = a["median"] / b["median"]
    paired = [x / y for x, y in zip(ours_runs, other_runs) if x and y]
    if len(paired) > 1:
        return med, f"{med:.2f} ({min(paired):.2f}..{max(paired):.2f})"
    return med, f"{med:.2f}"


def machine_info() -> dict:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "platform": platform.platform(), "busy_cpus": busy_cpus()}


def busy_cpus(interval: float = 1.0) -> float:
    """CPUs' worth of time other processes used over ``interval`` (from /proc/stat).

    The benchmark needs an otherwise idle machine; this makes a busy one
    visible in the report instead of silently skewing it.
    """
    def sample():
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return sum(vals), idle
    try:
        t0, i0 = sample()
        time.sleep(interval)
        t1, i1 = sample()
    except (OSError, ValueError):
        return -1.0
    total = t1 - t0
    return round((total - (i1 - i0)) / total * (os.cpu_count() or 1), 2) if total else 0.0


def echo_benchmark(args) -> dict:
    contenders = [c.strip() for c in args.libs.split(",") if c.strip()]
    if args.orig_python and "picows-pypi" not in contenders:
        contenders.insert(contenders.index(OURS) + 1 if OURS in contenders else 0,
                          "picows-pypi")
    if "picows-pypi" in contenders and not args.orig_python:
        raise SystemExit("picows-pypi needs --orig-python /path/to/venv/bin/python")
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    loops = [x.strip() for x in args.loops.split(",")]
    transports = [x.strip() for x in args.transports.split(",")]

    certdir = None
    tmp = None
    if "tls" in transports:
        tmp = tempfile.TemporaryDirectory(prefix="picows-bench-")
        certdir = tmp.name
        make_cert(certdir)

    total = len(transports) * len(loops) * len(sizes) * args.repeats * len(contenders)
    print(f"# {total} measurements of {args.warmup}+{args.duration}s "
          f"({', '.join(contenders)})", file=sys.stderr, flush=True)
    runs: dict = {}
    cpu: dict = {}
    other: list = []
    versions: dict = {}
    errors: list = []
    k = 0
    t_start = time.monotonic()
    for transport in transports:
        for loop in loops:
            for size in sizes:
                for rep in range(args.repeats):
                    # Rotate the order so no contender always runs first.
                    order = contenders[rep % len(contenders):] + contenders[:rep % len(contenders)]
                    for contender in order:
                        k += 1
                        key = (transport, loop, size, contender)
                        runs.setdefault(key, [None] * args.repeats)
                        cpu.setdefault(key, [(None, None)] * args.repeats)
                        try:
                            r = measure(args, contender, loop, size,
                                        certdir if transport == "tls" else None)
                            runs[key][rep] = r["rps"]
                            cpu[key][rep] = (r.get("server_cpu_us"), r.get("client_cpu_us"))
                            versions[contender] = r.get("version", "?")
                            msg = f"{fmt_rate(r['rps'])} rt/s"
                            if r.get("other_cpus") is not None:
                                other.append(r["other_cpus"])
                                if r["other_cpus"] > OTHER_LOAD_WARN:
                                    msg += f" (other load {r['other_cpus']:.2f} CPUs!)"
                        except Exception as exc:  # noqa: BLE001 - report and go on
                            errors.append({"transport": transport, "loop": loop, "size": size,
                                           "contender": contender, "repeat": rep,
                                           "error": str(exc)})
                            msg = f"ERROR {str(exc).splitlines()[0]}"
                        print(f"[{k}/{total} {time.monotonic() - t_start:.0f}s] {transport} "
                              f"{loop} {size_name(size)} #{rep + 1} {contender}: {msg}",
                              file=sys.stderr, flush=True)
    if tmp is not None:
        tmp.cleanup()
    return {"contenders": contenders, "sizes": sizes, "loops": loops,
            "transports": transports, "runs": runs, "cpu": cpu, "versions": versions,
            "other_cpus": other,
            "errors": errors}


def echo_report(args, res, info) -> tuple[str, list]:
    contenders, runs = res["contenders"], res["runs"]
    out = []
    records = []
    others = [c for c in ("raw", "websockets", "picows.websockets", "aiohttp", "picows-pypi")
              if c in contenders and OURS in contenders]
    checks = []
    for transport in res["transports"]:
        for loop in res["loops"]:
            title = (f"### {loop}, {transport.upper()}, "
                     f"{'pinned to CPU ' + args.pin if args.pin else 'not pinned'}")
            out.append(title)
            out.append("")
            out.append("Round trips per second, median (min..max) over "
                       f"{args.repeats} repeats; MB/s = payload bytes each way.")
            out.append("")
            # The websockets-API layers compared with each other too.
            layers = ("picows.websockets" in contenders
                      and "picows-pypi.websockets" in contenders)
            head = (["size"] + contenders + [f"ours/{o}" for o in others]
                    + (["picows.websockets/picows-pypi.websockets"] if layers else []))
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "|".join(["---"] + ["--:"] * (len(head) - 1)) + "|")
            for size in res["sizes"]:
                row = [size_name(size)]
                for c in contenders:
                    vals = runs.get((transport, loop, size, c), [])
                    s = summarize(vals)
                    if s is None:
                        row.append("error")
                        continue
                    row.append(f"{fmt_rate(s['median'])} "
                               f"({fmt_rate(s['min'])}..{fmt_rate(s['max'])})"
                               f" {fmt_mbps(s['median'] * size / 1e6)} MB/s")
                    records.append({"transport": transport, "loop": loop, "size": size,
                                    "contender": c, "pinned": args.pin, "runs": vals,
                                    "median_rps": s["median"], "min_rps": s["min"],
                                    "max_rps": s["max"],
                                    "median_mbps": s["median"] * size / 1e6})
                for o in others:
                    med, cell = ratio_cell(runs.get((transport, loop, size, OURS), []),
                                           runs.get((transport, loop, size, o), []))
                    row.append(cell)
                    target = target_for(transport, loop, size, o)
                    if target is not None and med is not None:
                        checks.append((f"{transport} {loop} {size_name(size)} ours/{o}",
                                       med, target))
                if layers:
                    med, cell = ratio_cell(
                        runs.get((transport, loop, size, "picows.websockets"), []),
                        runs.get((transport, loop, size, "picows-pypi.websockets"), []))
                    row.append(cell)
                    target = TARGETS_LAYER.get((transport, loop))
                    if target is not None and med is not None:
                        checks.append((f"{transport} {loop} {size_name(size)} "
                                       f"picows.websockets/picows-pypi.websockets",
                                       med, target))
                out.append("| " + " | ".join(row) + " |")
            out.append("")
            out.append("CPU time per round trip in microseconds, server + client "
                       "(median; main threads, user + kernel, from /proc/PID/schedstat).")
            out.append("")
            out.append("| size | " + " | ".join(contenders) + " |")
            out.append("|" + "|".join(["---"] + ["--:"] * len(contenders)) + "|")
            for size in res["sizes"]:
                row = [size_name(size)]
                for c in contenders:
                    pairs = res["cpu"].get((transport, loop, size, c), [])
                    srv = summarize([p[0] for p in pairs])
                    cli = summarize([p[1] for p in pairs])
                    row.append(f"{srv['median']:.1f} + {cli['median']:.1f}" if srv and cli
                               else "n/a")
                    for rec in records:
                        if (rec["transport"], rec["loop"], rec["size"], rec["contender"]) == (
                                transport, loop, size, c):
                            rec["server_cpu_us"] = srv and srv["median"]
                            rec["client_cpu_us"] = cli and cli["median"]
                out.append("| " + " | ".join(row) + " |")
            out.append("")
    if checks:
        out.append("### Ratios against the targets (median ours / median other)")
        out.append("")
        if not args.pin:
            out.append("Targets are stated for runs pinned to one CPU (--pin N); "
                       "this run is not pinned.")
            out.append("")
        out.append("| condition | measured | target | |")
        out.append("|---|--:|--:|---|")
        for name, med, target in checks:
            out.append(f"| {name} | {med:.2f} | >= {target:.2f} | "
                       f"{'met' if med >= target else 'BELOW'} |")
        out.append("")
    other = res.get("other_cpus") or []
    if other:
        busy = [x for x in other if x > OTHER_LOAD_WARN]
        out.append(f"Other processes' load during the measurements: median "
                   f"{statistics.median(other):.2f} CPUs, max {max(other):.2f}; "
                   f"{len(busy)} of {len(other)} measurements above {OTHER_LOAD_WARN} CPUs"
                   + (" -- those numbers are skewed." if busy else "."))
        out.append("")
    if res["errors"]:
        out.append("### Errors")
        out.append("")
        for e in res["errors"]:
            first = e["error"].replace("\n", " / ")
            out.append(f"- {e['transport']} {e['loop']} {size_name(e['size'])} "
                       f"{e['contender']} #{e['repeat'] + 1}: {first}")
        out.append("")
    return "\n".join(out), records


def target_for(transport, loop, size, other):
    if transport == "tcp" and loop == "uvloop":
        if other == "raw":
            return TARGETS_UVLOOP_RAW.get(size)
        if other == "websockets":
            return TARGET_UVLOOP_WEBSOCKETS
        if other == "aiohttp":
            return TARGET_UVLOOP_AIOHTTP
    if transport == "tcp" and loop == "asyncio" and other == "raw" and size == 256:
        return TARGET_ASYNCIO_RAW_256
    if transport == "tls" and other == "aiohttp":
        return TARGET_TLS_AIOHTTP
    return None


# ---------------------------------------------------------------------------
# Parent side: memory mode
# ---------------------------------------------------------------------------

def vm_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def settled_rss(pid: int, wait: float = 0.3, tries: int = 20) -> int:
    """VmRSS once two readings a little apart agree within 64 KiB."""
    last = vm_rss_kib(pid)
    for _ in range(tries):
        time.sleep(wait)
        now = vm_rss_kib(pid)
        if abs(now - last) <= 64:
            return now
        last = now
    return last


def memory_one(args, contender, loop, n, certdir) -> dict:
    scpu, ccpu = pins(args)
    base = contender_cmd(args, contender)
    env = child_env(contender)
    common = ["--loop", loop] + (["--certdir", certdir] if certdir else [])
    server = Child(base + ["--role", "server"] + common + (["--cpu", scpu] if scpu else []),
                   env)
    try:
        port = server.expect("PORT", 60).split()[0]

        def clients(count):
            c = Child([sys.executable, os.path.abspath(__file__), "--lib", contender,
                       "--role", "memclient", "--port", port, "--connections", str(count),
                       "--concurrency", str(args.concurrency)] + common
                      + (["--cpu", ccpu] if ccpu else []), child_env("memclient"))
            ok, failed = (int(x) for x in c.expect("READY", 60 + count / 50).split())
            return c, ok, failed

        # Warm up: a few connections opened and closed, so one-time
        # allocations (imports, first handshake, buffers) are in the baseline.
        warm, _, _ = clients(min(50, n))
        warm.stop()
        time.sleep(0.5)
        before = settled_rss(server.pid)
        c, ok, failed = clients(n)
        try:
            time.sleep(0.5)
            after = settled_rss(server.pid)
        finally:
            c.stop()
        per = (after - before) / ok if ok else float("nan")
        return {"contender": contender, "loop": loop, "connections": ok, "failed": failed,
                "rss_before_kib": before, "rss_after_kib": after, "kib_per_connection": per}
    finally:
        server.stop()


def memory_benchmark(args, info) -> tuple[str, list]:
    libs = [c.strip() for c in args.memory_libs.split(",") if c.strip()]
    if args.orig_python and "picows-pypi" not in libs:
        libs.append("picows-pypi")
    loops = [x.strip() for x in args.loops.split(",")]
    transport = "tls" if "tls" in args.transports.split(",") else "tcp"
    certdir, tmp = None, None
    if transport == "tls":
        tmp = tempfile.TemporaryDirectory(prefix="picows-bench-")
        certdir = tmp.name
        make_cert(certdir)
    results = []
    for loop in loops:
        for lib in libs:
            try:
                r = memory_one(args, lib, loop, args.memory, certdir)
                print(f"memory {loop} {lib}: {r['kib_per_connection']:.1f} KiB/connection "
                      f"({r['connections']} ok, {r['failed']} failed)", file=sys.stderr,
                      flush=True)
            except Exception as exc:  # noqa: BLE001 - report and go on
                r = {"contender": lib, "loop": loop, "error": str(exc)}
                print(f"memory {loop} {lib}: ERROR {exc}", file=sys.stderr, flush=True)
            r["transport"] = transport
            results.append(r)
    if tmp is not None:
        tmp.cleanup()
    out = [f"### Server RSS per idle connection ({args.memory} connections, {transport.upper()})",
           "", "(VmRSS after - VmRSS before) / connections, after a warm-up of 50 connections.",
           "", "| loop | server | connections | RSS before | RSS after | KiB / connection | |",
           "|---|---|--:|--:|--:|--:|---|"]
    for r in results:
        if "error" in r:
            out.append(f"| {r['loop']} | {r['contender']} | error | | | | "
                       f"{r['error'].splitlines()[0]} |")
            continue
        note = ""
        if r["contender"] == OURS:
            note = (f"target <= {TARGET_IDLE_KIB:.0f}: "
                    f"{'met' if r['kib_per_connection'] <= TARGET_IDLE_KIB else 'ABOVE'}")
        out.append(f"| {r['loop']} | {r['contender']} | {r['connections']} | "
                   f"{r['rss_before_kib'] / 1024:.1f} MiB | {r['rss_after_kib'] / 1024:.1f} MiB | "
                   f"{r['kib_per_connection']:.1f} | {note} |")
    out.append("")
    return "\n".join(out), results


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="WebSocket echo benchmark: picows vs websockets vs aiohttp vs raw TCP",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--sizes", default=DEFAULT_SIZES,
                   help="message sizes, comma separated (64, 256, 8KiB, 100KiB, 1MiB)")
    p.add_argument("--loops", default="asyncio,uvloop", help="event loops: asyncio, uvloop")
    p.add_argument("--libs", default=DEFAULT_LIBS,
                   help="contenders: raw, picows, picows-pypi, websockets, aiohttp")
    p.add_argument("--transports", default="tcp", help="tcp, tls or tcp,tls")
    p.add_argument("--tls", action="store_const", const="tls", dest="transports",
                   help="shorthand for --transports tls")
    p.add_argument("--repeats", type=int, default=3, help="repeats per contender (interleaved)")
    p.add_argument("--duration", type=float, default=2.0, help="seconds measured per run")
    p.add_argument("--warmup", type=float, default=0.5, help="seconds of warm-up per run")
    p.add_argument("--quick", action="store_true",
                   help="smoke run of about a minute: 1 repeat, 0.2+0.5 s per run")
    p.add_argument("--pin", metavar="CPU",
                   help="pin server and client to CPU N ('N'), or server to N and client "
                        "to M ('N,M')")
    p.add_argument("--orig-python", metavar="PYTHON",
                   help="interpreter of a venv with the PyPI picows; adds the "
                        "'picows-pypi' contender")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--save", action="store_true",
                   help="also write the report and the JSON into benchmarks/results/ "
                        "(YYYY-MM-DD-<commit>.md, appended to if it exists, and "
                        "YYYY-MM-DD-<commit>-<kind>.json)")
    p.add_argument("--memory", type=int, nargs="?", const=10_000, metavar="N",
                   help="memory mode: server RSS per idle connection with N connections "
                        "(default N: 10000)")
    p.add_argument("--memory-libs", default="picows",
                   help="servers measured in memory mode (raw, picows, websockets, aiohttp)")
    p.add_argument("--server-wrapper", metavar="CMD",
                   help="prefix for the echo server command, for profiling, e.g. "
                        "'perf record -g -o /tmp/perf.data --' or "
                        "'py-spy record --native -o /tmp/spy.svg --'")
    p.add_argument("--concurrency", type=int, default=200,
                   help="memory mode: handshakes in flight at once")
    # Child roles.
    p.add_argument("--role", choices=("bench", "server", "client", "memclient"), default="bench",
                   help=argparse.SUPPRESS)
    p.add_argument("--lib", help=argparse.SUPPRESS)
    p.add_argument("--loop", default="uvloop", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    p.add_argument("--cpu", help=argparse.SUPPRESS)
    p.add_argument("--certdir", help=argparse.SUPPRESS)
    p.add_argument("--connections", type=int, help=argparse.SUPPRESS)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.role == "server":
        role_server(args)
        return 0
    if args.role == "client":
        role_client(args)
        return 0
    if args.role == "memclient":
        role_memclient(args)
        return 0

    if args.quick:
        args.repeats = 1
        args.duration = 0.5
        args.warmup = 0.2
    if args.pin:
        for cpu in args.pin.replace(",", "+").split("+"):
            if int(cpu) not in os.sched_getaffinity(0):
                raise SystemExit(f"--pin {args.pin}: CPU {cpu} is not available")
        args.pin = args.pin.replace("+", ",")

    info = machine_info()
    cmd = "python benchmarks/echo.py " + " ".join(sys.argv[1:] if argv is None else argv)
    header = [f"Command: `{cmd}`",
              (f"Machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}, "
               f"{info['platform']}")]
    header.append(f"Other load before the run: {info['busy_cpus']} CPUs busy"
                  + (" -- WARNING: the machine is not idle, the numbers are skewed"
                     if info["busy_cpus"] > 0.3 else ""))
    if info["busy_cpus"] > 0.3:
        print(f"WARNING: {info['busy_cpus']} CPUs busy before the run; results will be skewed",
              file=sys.stderr, flush=True)
    doc: dict = {"command": cmd, "machine": info, "pin": args.pin}
    if args.memory is not None:
        text, results = memory_benchmark(args, info)
        doc["memory"] = results
    else:
        res = echo_benchmark(args)
        text, records = echo_report(args, res, info)
        header.append("Versions: " + ", ".join(f"{c} {v}" for c, v in res["versions"].items()))
        header.append(f"Each run: {args.warmup}s warm-up + {args.duration}s measured, "
                      f"{args.repeats} repeats, contenders interleaved; "
                      f"loops: {', '.join(res['loops'])}")
        doc.update({"echo": records, "errors": res["errors"], "versions": res["versions"],
                    "other_cpus": res["other_cpus"],
                    "duration": args.duration, "warmup": args.warmup,
                    "repeats": args.repeats})
    print("\n".join(header) + "\n\n" + text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    if args.save:
        import resultfile

        if args.memory is not None:
            kind, title = "memory", f"Memory, {args.memory} idle connections"
        else:
            kind = "-".join(res["transports"])
            where = f"pinned to CPU {args.pin}" if args.pin else "not pinned"
            title = f"{kind.upper().replace('-', ' and ')}, {where}"
        for path in resultfile.save(kind, title, "\n".join(header) + "\n\n" + text, doc):
            print(f"saved {os.path.relpath(path)}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

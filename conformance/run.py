"""``python -m conformance``: run Autobahn|Testsuite against picows and gate it.

Two directions, each a wstest mode against a thin picows testee:

- ``server``: wstest ``fuzzingclient`` connects to conformance/echo_server.py
  (127.0.0.1:9002); reports in ``reports/servers``.
- ``client``: conformance/echo_client.py connects to wstest ``fuzzingserver``
  (127.0.0.1:9001); reports in ``reports/clients``.

wstest comes from one of two backends: ``native`` (wstest under Python 2.7,
installed by conformance/install_wstest.sh into ``PICOWS_WSTEST_PREFIX``,
default ~/.cache/picows-wstest) or ``docker`` (the pinned
crossbario/autobahn-testsuite image, driven with the Docker SDK; see
docker_backend.py).  The testees always run here, with the picows that this
Python imports.  The verdict is gate.py's; exit status 0 = pass, 1 = gate
failed, 2 = could not run.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from conformance import gate

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIG_DIR = HERE / "autobahn-config"
REPORTS_DIR = HERE / "reports"
DOCS_BADGE = ROOT / "docs" / "autobahn-badge.svg"

WSTEST_VERSION = "25.10.1"
DEFAULT_PREFIX = Path.home() / ".cache" / "picows-wstest"
DEFAULT_PYTHON2 = "/usr/bin/python2.7"
AGENT = "picows"

# Per direction: the committed wstest spec, the wstest mode, the report dir.
SPECS = {
    "server": ("fuzzingclient.json", "fuzzingclient", "servers"),
    "client": ("fuzzingserver.json", "fuzzingserver", "clients"),
}


class SetupError(RuntimeError):
    """The gate could not run (as opposed to: it ran and failed)."""


def log(msg: str) -> None:
    print(f"conformance: {msg}", flush=True)


# ------------------------------------------------------------------ specs

def load_spec(direction: str) -> dict[str, Any]:
    return json.loads((CONFIG_DIR / SPECS[direction][0]).read_text())


def spec_port(direction: str) -> int:
    """The port the committed spec uses: the testee server's or wstest's."""
    spec = load_spec(direction)
    url = spec["servers"][0]["url"] if direction == "server" else spec["url"]
    return int(url.rsplit(":", 1)[1].split("/")[0])


def derive_spec(direction: str, cases: list[str], outdir: str,
                tls: dict[str, str] | None = None) -> dict[str, Any]:
    """The committed spec with this run's case selection and report dir.

    With ``tls`` (the files of :func:`make_tls_files`, as wstest sees them)
    the URL becomes ``wss://``; the fuzzing server also gets its key and
    certificate. The fuzzing client checks no certificate (autobahntestsuite
    uses Twisted's ClientContextFactory when the spec names no hostname).
    """
    spec = load_spec(direction)
    spec["cases"] = cases
    spec["outdir"] = outdir
    if tls:
        if direction == "server":
            for server in spec["servers"]:
                server["url"] = server["url"].replace("ws://", "wss://", 1)
        else:
            spec["url"] = spec["url"].replace("ws://", "wss://", 1)
            spec["key"] = tls["key"]
            spec["cert"] = tls["cert"]
    return spec


def make_tls_files(directory: Path) -> dict[str, Path]:
    """A CA and a certificate for 127.0.0.1 and localhost, made for this run
    (trustme, as the tests do): ``ca`` the CA the client testee trusts,
    ``cert`` the chain and ``key`` the key that the TLS server (the picows
    echo server, or wstest's fuzzing server) presents."""
    try:
        import trustme
    except ImportError as exc:
        raise SetupError("--tls needs trustme (pip install trustme)") from exc
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = {"ca": directory / "ca.pem", "cert": directory / "server-chain.pem",
             "key": directory / "server-key.pem"}
    ca.cert_pem.write_to_path(str(files["ca"]))
    cert.private_key_pem.write_to_path(str(files["key"]))
    with open(files["cert"], "wb") as out:
        for blob in cert.cert_chain_pems:
            out.write(blob.bytes())
    return files


# -------------------------------------------------------------- processes

def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_port(port: int, timeout: float, alive=lambda: True, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if not alive():
            raise SetupError(f"{what} exited before listening on port {port}")
        time.sleep(0.1)
    raise SetupError(f"{what} is not listening on port {port} after {timeout:.0f} s")


def require_free(port: int) -> None:
    if port_open(port):
        raise SetupError(
            f"something already listens on 127.0.0.1:{port}; stop it first "
            "(the gate must not test some other server)")


def stop_process(proc: subprocess.Popen, grace: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def request_reports(port: int, agent: str, timeout: float = 60.0, tls: bool = False) -> bool:
    """Make the fuzzing server write its reports (``/updateReports``) without
    picows, when the client testee died or hung before asking itself."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /updateReports?agent={agent} HTTP/1.1\r\n"
               f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
    data = b""
    try:
        with contextlib.ExitStack() as stack:
            s = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout))
            if tls:  # wstest's own certificate: nothing to check here
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                s = stack.enter_context(ctx.wrap_socket(s))
            s.sendall(request.encode())
            # wstest writes the reports, then sends CLOSE: wait for a frame byte.
            while True:
                head_end = data.find(b"\r\n\r\n")
                if head_end >= 0 and len(data) > head_end + 4:
                    break
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        log(f"/updateReports failed: {exc}")
        return False
    return data.startswith(b"HTTP/1.1 101")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ----------------------------------------------------------------- picows

def testee_environment(preload: str | None = None) -> tuple[dict[str, str], str]:
    """Environment in which the testees import picows, and where it is.

    An installed picows wins (the tox env); else the in-place build in the
    source tree (``python setup.py build_ext --inplace``).  The testees run
    as scripts, so the source tree is on their path only if we put it there.
    ``preload`` goes into their ``LD_PRELOAD`` (the sanitizer runtime that an
    ASan build needs loaded first); it is already there for the probe.
    """
    probe = ("import picows, picows.picows; "
             "print(getattr(picows, '__version__', '?'), picows.__file__)")
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        if not Path(preload).is_file():
            raise SetupError(f"--preload {preload}: no such file")
        env["LD_PRELOAD"] = preload
    neutral = tempfile.gettempdir()
    tried = []
    for extra in (None, str(ROOT)):
        trial = dict(env)
        if extra:
            trial["PYTHONPATH"] = os.pathsep.join(
                p for p in (extra, env.get("PYTHONPATH")) if p)
        r = subprocess.run([sys.executable, "-c", probe], cwd=neutral, env=trial,
                           capture_output=True, text=True, check=False)
        if r.returncode == 0:
            return trial, r.stdout.strip()
        tried.append(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "?")
    raise SetupError(
        "picows is not importable by the testees ("
        + "; ".join(tried) + "). Install it (pip install -e .) or build it in place "
        "(python setup.py build_ext --inplace)")


# ----------------------------------------------------------- native wstest

class NativeBackend:
    """wstest from autobahntestsuite under Python 2.7 (install_wstest.sh)."""

    name = "native"

    def __init__(self, prefix: Path | None = None, python2: str | None = None):
        self.prefix = Path(prefix or os.environ.get("PICOWS_WSTEST_PREFIX") or DEFAULT_PREFIX)
        self.python2 = python2 or os.environ.get("PICOWS_PYTHON2") or DEFAULT_PYTHON2
        self.wstest = self.prefix / "bin" / "wstest"
        self.env = dict(os.environ, PYTHONUSERBASE=str(self.prefix), PYTHONUNBUFFERED="1")
        self.env.pop("PYTHONPATH", None)
        self.env.pop("PYTHONHOME", None)
        self.env.pop("LD_PRELOAD", None)  # a sanitizer runtime is for the testees only

    def check(self) -> str:
        if not (Path(self.python2).exists() and self.wstest.exists()):
            raise SetupError(
                f"no wstest in {self.prefix} (or no {self.python2}): "
                "run bash conformance/install_wstest.sh, or use --backend docker")
        r = subprocess.run([self.python2, str(self.wstest), "--autobahnversion"],
                           env=self.env, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise SetupError(f"wstest does not run: {r.stderr.strip()[-500:]}")
        return " ".join(r.stdout.split())

    def host_path(self, path: Path) -> str:
        return str(path)

    def _cmd(self, mode: str, spec: Path) -> list[str]:
        cmd = [self.python2, str(self.wstest), "-m", mode, "-s", str(spec)]
        if mode == "fuzzingserver":
            cmd += ["--webport", "0"]
        return cmd

    def run_fuzzingclient(self, spec: Path, logfile: Path, timeout: float) -> int:
        with open(logfile, "wb") as out:
            proc = subprocess.Popen(self._cmd("fuzzingclient", spec), cwd=spec.parent,
                                    env=self.env, stdout=out, stderr=subprocess.STDOUT)
            try:
                return proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"wstest fuzzingclient still running after {timeout:.0f} s: stopping it")
                stop_process(proc)
                return -1

    def start_fuzzingserver(self, spec: Path, logfile: Path) -> Any:
        out = open(logfile, "wb")  # noqa: SIM115 - closed in stop_fuzzingserver
        proc = subprocess.Popen(self._cmd("fuzzingserver", spec), cwd=spec.parent,
                                env=self.env, stdout=out, stderr=subprocess.STDOUT)
        proc.logfile = out  # type: ignore[attr-defined]
        return proc

    def fuzzingserver_alive(self, handle: Any) -> bool:
        return handle.poll() is None

    def stop_fuzzingserver(self, handle: Any, logfile: Path) -> None:
        stop_process(handle)
        handle.logfile.close()

    def case_list(self) -> tuple[list[str], dict[str, str]]:
        code = ("import json\n"
                "from autobahntestsuite.case import Cases, CaseCategories\n"
                "from autobahntestsuite.caseset import CaseSet\n"
                "cs = CaseSet('', 'Case', Cases, CaseCategories, {})\n"
                "print(json.dumps([[cs.caseClasstoId(c) for c in Cases], CaseCategories]))\n")
        r = subprocess.run([self.python2, "-c", code], env=self.env, capture_output=True,
                           text=True, check=True)
        cases, names = json.loads(r.stdout)
        return cases, names


def choose_backend(name: str, reports: Path) -> Any:
    """The backend asked for; ``auto`` is docker when an engine answers and
    has (or can pull) the image, else native, said in one line."""
    if name in ("docker", "auto"):
        try:
            from conformance import docker_backend
            backend = docker_backend.DockerBackend.from_env(reports)
        except Exception as exc:  # any failure means no usable engine
            if name == "docker":
                raise SetupError(f"docker backend: no Docker engine ({exc})") from exc
            log(f"no Docker engine ({type(exc).__name__}); using native wstest")
            return NativeBackend()
        try:
            backend.check()
        except docker_backend.ImageUnavailable as exc:
            if name == "docker":
                raise SetupError(f"docker backend: {exc}") from exc
            log(f"{exc}; using native wstest")
            return NativeBackend()
        return backend
    return NativeBackend()


# -------------------------------------------------------------- directions

def run_direction(direction: str, backend: Any, cases: list[str], reports: Path,
                  testee_env: dict[str, str],
                  args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """Run one direction; return the parsed index.json ({} if none) and the
    testee's problems (gate.testee_problems: sanitizer reports, bad exit)."""
    spec_name, mode, outname = SPECS[direction]
    outdir = reports / outname
    shutil.rmtree(outdir, ignore_errors=True)
    (reports / "config").mkdir(parents=True, exist_ok=True)
    (reports / "logs").mkdir(parents=True, exist_ok=True)
    spec_path = reports / "config" / spec_name
    tls_files = getattr(args, "tls_files", None)
    wstest_tls = ({k: backend.host_path(v) for k, v in tls_files.items()}
                  if tls_files else None)
    spec = derive_spec(direction, cases, backend.host_path(outdir), wstest_tls)
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    wstest_log = reports / "logs" / f"wstest-{mode}.log"
    testee_args = ["--loop", args.loop] + (["--verbose"] if args.verbose else [])
    scheme = "wss" if tls_files else "ws"
    port = spec_port(direction)
    require_free(port)

    if direction == "server":
        testee_log = reports / "logs" / "echo_server.log"
        with open(testee_log, "wb") as out:
            testee = subprocess.Popen(
                [sys.executable, str(HERE / "echo_server.py"), "--host", "127.0.0.1",
                 "--port", str(port)] + testee_args
                + (["--tls-cert", str(tls_files["cert"]), "--tls-key", str(tls_files["key"])]
                   if tls_files else []),
                cwd=reports, env=testee_env, stdout=out, stderr=subprocess.STDOUT)
            try:
                wait_port(port, 30, lambda: testee.poll() is None, "echo_server.py")
                log(f"server: wstest {mode}, {len(cases)} cases -> {scheme}://127.0.0.1:{port}")
                rc = backend.run_fuzzingclient(spec_path, wstest_log, args.timeout)
                if rc != 0:
                    log(f"wstest {mode} exited with {rc}; see {wstest_log}")
                died = testee.poll() is not None
                if died:
                    log(f"echo_server.py died (exit {testee.returncode}):\n"
                        + tail(testee_log))
            finally:
                stop_process(testee)
        problems = gate.testee_problems(
            "echo_server.py", testee_log.read_text(errors="replace"), testee.returncode,
            signalled=not died)
    else:
        testee_log = reports / "logs" / "echo_client.log"
        handle = backend.start_fuzzingserver(spec_path, wstest_log)
        try:
            wait_port(port, 60, lambda: backend.fuzzingserver_alive(handle),
                      f"wstest {mode}")
            log(f"client: echo_client.py -> wstest {mode} {scheme}://127.0.0.1:{port}, "
                f"{len(cases)} cases")
            with open(testee_log, "wb") as out:
                testee = subprocess.Popen(
                    [sys.executable, str(HERE / "echo_client.py"),
                     "--url", f"{scheme}://127.0.0.1:{port}", "--agent", AGENT] + testee_args
                    + (["--ca-file", str(tls_files["ca"])] if tls_files else []),
                    cwd=reports, env=testee_env, stdout=out, stderr=subprocess.STDOUT)
                try:
                    rc = testee.wait(args.timeout)
                except subprocess.TimeoutExpired:
                    log(f"echo_client.py still running after {args.timeout:.0f} s: "
                        "stopping it")
                    stop_process(testee)
                    rc = -1
            if rc != 0:
                log(f"echo_client.py exited with {rc}:\n" + tail(testee_log))
            problems = gate.testee_problems(
                "echo_client.py", testee_log.read_text(errors="replace"),
                testee.returncode, signalled=rc == -1)
            if not (outdir / "index.json").exists():
                log("no reports yet: asking the fuzzing server for them")
                request_reports(port, AGENT, tls=bool(tls_files))
        finally:
            backend.stop_fuzzingserver(handle, wstest_log)

    for problem in problems:
        log(f"{direction}: {problem}")
    index_path = outdir / "index.json"
    if not index_path.exists():
        log(f"no {index_path}: wstest wrote no report; see {wstest_log}")
        return {}, problems
    return json.loads(index_path.read_text()), problems


# -------------------------------------------------------------------- main

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m conformance",
        description="Run Autobahn|Testsuite against picows and gate the results "
                    "(see conformance/README.md).")
    p.add_argument("--direction", choices=("server", "client", "both"), default="both",
                   help="which side of picows to test (default both)")
    p.add_argument("--cases", default="*",
                   help="comma-separated case IDs or wstest patterns, e.g. '1.*,2.*' "
                        "(default all)")
    p.add_argument("--backend", choices=("native", "docker", "auto"), default="auto",
                   help="where wstest runs: native (Python 2.7), docker, or auto "
                        "(docker if an engine answers, else native)")
    p.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                   help="testee event loop (auto: uvloop if importable)")
    p.add_argument("--tls", action="store_true",
                   help="over TLS: wss:// both ways, with a certificate made for the run "
                        "(needs trustme)")
    p.add_argument("--timeout", type=float, default=1800.0,
                   help="seconds allowed per direction (default 1800)")
    p.add_argument("--reports", type=Path, default=REPORTS_DIR,
                   help="report directory (default conformance/reports)")
    p.add_argument("--update-badge", action="store_true",
                   help="also refresh docs/autobahn-badge.svg (needs a full run, "
                        "both directions)")
    p.add_argument("--gate-only", action="store_true",
                   help="run nothing: judge the wstest reports already in --reports "
                        "(servers/, clients/), e.g. from docker-compose")
    p.add_argument("--write-case-list", action="store_true",
                   help="regenerate conformance/cases.json from the native wstest and exit")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="directions run at once: 2 runs the server and the client "
                        "direction side by side, each wstest on its own core "
                        "(default: 2 with two CPUs or more, else 1)")
    p.add_argument("--preload", metavar="LIB",
                   help="LD_PRELOAD for the testees only, e.g. the libasan.so that an "
                        "ASan build of picows needs (tox -e asan); wstest never gets it")
    p.add_argument("-v", "--verbose", action="store_true", help="testee debug logging")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return _main(args)
    except SetupError as exc:
        log(f"error: {exc}")
        return 2
    except gate.ExpectedError as exc:
        log(f"error: {exc}")
        return 2


def _main(args: argparse.Namespace) -> int:
    if args.write_case_list:
        return write_case_list()

    all_cases, names = gate.load_case_list()
    try:
        cases = gate.resolve(args.cases.split(","), all_cases)
    except ValueError as exc:
        raise SetupError(f"--cases: {exc}") from exc
    full = len(cases) == len(all_cases)
    directions = ["server", "client"] if args.direction == "both" else [args.direction]
    if args.update_badge and not (full and len(directions) == 2 and not args.tls):
        raise SetupError("--update-badge needs every case in both directions, over ws://")
    expected = gate.load_expected()

    reports = args.reports.resolve()
    if args.gate_only:
        return gate_only(reports, directions, cases, all_cases, names, expected, args)
    reports.mkdir(parents=True, exist_ok=True)
    backend = choose_backend(args.backend, reports)
    wstest_version = backend.check()
    args.tls_files = make_tls_files(reports / "config" / "tls") if args.tls else None
    transport = "wss (TLS)" if args.tls else "ws"
    testee_env, picows_where = testee_environment(args.preload)
    if args.preload:
        log(f"testees run with LD_PRELOAD={args.preload}")
    log(f"backend {backend.name} ({wstest_version}); picows {picows_where}; "
        f"loop {args.loop}; {transport}; {len(cases)} cases; reports in {reports}")

    def one(direction: str) -> Any:
        t0 = time.monotonic()
        index, problems = run_direction(direction, backend, cases, reports, testee_env, args)
        verdict = gate.evaluate(index, direction=direction, agent=AGENT, cases=cases,
                                expected=expected[direction], all_cases=all_cases,
                                testee_errors=problems)
        verdict.wall_time = time.monotonic() - t0
        return verdict

    started = time.monotonic()
    # wstest is single-threaded and does all the work of a run (the testee
    # idles), so the two directions, on separate ports, report files and
    # logs, run side by side when there are two cores.
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        verdicts = list(pool.map(one, directions))
    for verdict in verdicts:
        print()
        print(gate.format_table(verdict, names), flush=True)
        print()
    total_time = time.monotonic() - started

    passed, total = gate.pass_count(verdicts)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = (f"Run {now}: backend {backend.name} ({wstest_version}), picows "
              f"{picows_where}, loop {args.loop}, {transport}, cases {args.cases}, "
              f"wall time {total_time:.1f} s.")
    (reports / "summary.md").write_text(gate.summary_markdown(verdicts, names, header))
    badge = gate.badge_svg(passed, total)
    (reports / "badge.svg").write_text(badge)
    ok = all(v.passed for v in verdicts)
    if args.update_badge:
        DOCS_BADGE.write_text(badge)
        log(f"updated {DOCS_BADGE.relative_to(ROOT)}")
    for v in verdicts:
        log(f"{v.direction}: {'PASS' if v.passed else 'FAIL'} "
            f"({len(v.passing)} OK, {len(v.accepted)} listed, {len(v.failures)} failing, "
            f"{v.wall_time:.1f} s)")
    log(f"{passed}/{total} cases OK in every direction run; wall time {total_time:.1f} s; "
        f"gate {'PASS' if ok else 'FAIL'}; see {reports / 'summary.md'}")
    return 0 if ok else 1


def gate_only(reports: Path, directions: list[str], cases: list[str],
              all_cases: list[str], names: dict[str, str],
              expected: dict[str, Any], args: argparse.Namespace) -> int:
    """Judge reports that something else made (docker-compose run): the same
    gate, tables and summary.md as a run, without the testee checks."""
    verdicts = []
    for direction in directions:
        index_path = reports / SPECS[direction][2] / "index.json"
        if not index_path.exists():
            log(f"{direction}: no {index_path}: every case counts as missing")
        index = json.loads(index_path.read_text()) if index_path.exists() else {}
        verdicts.append(gate.evaluate(index, direction=direction, agent=AGENT, cases=cases,
                                      expected=expected[direction], all_cases=all_cases))
    for verdict in verdicts:
        print()
        print(gate.format_table(verdict, names), flush=True)
        print()
    passed, total = gate.pass_count(verdicts)
    (reports / "summary.md").write_text(gate.summary_markdown(
        verdicts, names, f"Reports judged in {reports} (--gate-only), cases {args.cases}."))
    ok = all(v.passed for v in verdicts)
    for v in verdicts:
        log(f"{v.direction}: {'PASS' if v.passed else 'FAIL'} "
            f"({len(v.passing)} OK, {len(v.accepted)} listed, {len(v.failures)} failing)")
    log(f"{passed}/{total} cases OK in every direction judged; gate {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def write_case_list() -> int:
    backend = NativeBackend()
    version = backend.check()
    cases, names = backend.case_list()
    cases.sort(key=gate.case_key)
    doc = {"_comment": "All case IDs of Autobahn|Testsuite, in its order. "
                       "Regenerate with: python -m conformance --write-case-list",
           "autobahntestsuite": version.rsplit(" ", 1)[-1],
           "categories": {k: v for k, v in sorted(names.items(), key=lambda kv: int(kv[0]))
                          if any(gate.category(c) == k for c in cases)},
           "cases": cases}
    # Case IDs packed several to a line: 517 of them.
    text = json.dumps({**doc, "cases": "@"}, indent=2)
    lines, line = [], []
    for c in cases:
        if line and len(", ".join(line + [json.dumps(c)])) > 80:
            lines.append(", ".join(line))
            line = []
        line.append(json.dumps(c))
    lines.append(", ".join(line))
    text = text.replace('"@"', "[\n    " + ",\n    ".join(lines) + "\n  ]")
    gate.CASES_FILE.write_text(text + "\n")
    log(f"wrote {gate.CASES_FILE.relative_to(ROOT)}: {len(cases)} cases")
    return 0

"""Run every atheris fuzz target for a bounded time; exit 1 on any finding.

    python fuzz/run.py                       # every target, 60 s each
    python fuzz/run.py --smoke               # every target, about 20 s in all (CI)
    python fuzz/run.py --target frames_server --seconds 600
    python fuzz/run.py --replay              # run every seed once (tox -e asan does this)
    python fuzz/run.py --list

Each target runs in its own process (libFuzzer through atheris), starting
from the committed seeds in fuzz/corpus/<target>/; inputs it discovers go to
a temporary directory and are thrown away (``--keep-corpus`` adds them to
the seeds instead). A finding (an exception, a broken invariant, an input
running over 10 s, memory over 2 GiB) is saved in fuzz/findings/<target>/
and printed with the command that replays it. Targets run two at a time by
default (``--jobs``).

picows is imported from the installed package (tox -e fuzz installs it) or,
when it is not installed, from this checkout (build it in place first).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SMOKE_TOTAL = 20.0
INPUT_TIMEOUT = 10   # seconds for one input before libFuzzer calls it a hang
RSS_LIMIT_MB = 2048

# name: (script, dictionary, max input length)
TARGETS = {
    "frames_server": ("fuzz_frames_server.py", "frames.dict", 8192),
    "frames_client": ("fuzz_frames_client.py", "frames.dict", 8192),
    "upgrade_request": ("fuzz_upgrade_request.py", "http.dict", 4096),
    "upgrade_response": ("fuzz_upgrade_response.py", "http.dict", 4096),
    "server_handshake": ("fuzz_server_handshake.py", "http.dict", 4096),
    "client_handshake": ("fuzz_client_handshake.py", "http.dict", 4096),
    "inflater": ("fuzz_inflater.py", "deflate.dict", 16384),
}


@dataclass
class Result:
    name: str
    seconds: float
    returncode: int
    execs: int
    new_inputs: int
    findings: list
    log: str


def child_env() -> dict:
    env = dict(os.environ)
    if importlib.util.find_spec("picows") is None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    return env


def picows_location(env: dict) -> str:
    out = subprocess.run([sys.executable, "-c", "import picows.picows as m; print(m.__file__)"],
                         env=env, capture_output=True, text=True, cwd=HERE)
    return (out.stdout or out.stderr).strip().splitlines()[-1] if (out.stdout or out.stderr) \
        else "?"


def run_target(name: str, seconds: int, env: dict, keep_corpus: bool,
               replay: bool = False) -> Result:
    script, dictionary, max_len = TARGETS[name]
    seeds = os.path.join(HERE, "corpus", name)
    findings_dir = os.path.join(HERE, "findings", name)
    os.makedirs(findings_dir, exist_ok=True)
    before = set(os.listdir(findings_dir))
    work = tempfile.mkdtemp(prefix=f"picows-fuzz-{name}-")
    # -runs=0: run the corpus once, no mutations.
    budget = "-runs=0" if replay else f"-max_total_time={seconds}"
    cmd = [sys.executable, os.path.join(HERE, script), budget, f"-timeout={INPUT_TIMEOUT}",
           f"-rss_limit_mb={RSS_LIMIT_MB}", f"-max_len={max_len}",
           f"-dict={os.path.join(HERE, 'dicts', dictionary)}",
           f"-artifact_prefix={findings_dir}{os.sep}", "-print_final_stats=1",
           work, seeds]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, env=env, cwd=HERE, capture_output=True, text=True,
                              errors="replace", timeout=seconds + 120)
        returncode, log = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        returncode = -9
        log = f"{exc.stdout or ''}{exc.stderr or ''}\nkilled: ran {seconds + 120} s"
    elapsed = time.monotonic() - started
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    new_inputs = len(os.listdir(work))
    if keep_corpus:
        for entry in os.listdir(work):
            shutil.copy(os.path.join(work, entry), seeds)
    shutil.rmtree(work, ignore_errors=True)
    findings = sorted(os.path.join(findings_dir, f)
                      for f in set(os.listdir(findings_dir)) - before)
    return Result(name, elapsed, returncode, int(m.group(1)) if m else 0, new_inputs,
                  findings, log)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", choices=sorted(TARGETS),
                        help="run only this target (repeatable)")
    parser.add_argument("--seconds", type=int, help="seconds per target (default 60)")
    parser.add_argument("--smoke", action="store_true",
                        help=f"about {SMOKE_TOTAL:.0f} s in total across the targets")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="targets run at the same time (default: 2)")
    parser.add_argument("--replay", action="store_true",
                        help="only run every seed once (e.g. under ASan, see docs/security.md)")
    parser.add_argument("--keep-corpus", action="store_true",
                        help="add the inputs found to fuzz/corpus/<target>/")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    args = parser.parse_args()

    if args.list:
        for name, (script, _, _) in TARGETS.items():
            print(f"{name:18} fuzz/{script}")
        return 0
    names = args.target or list(TARGETS)
    jobs = max(1, min(args.jobs, len(names)))
    if args.seconds is not None:
        seconds = args.seconds
    elif args.smoke:
        rounds = -(-len(names) // jobs)
        # libFuzzer and atheris need about a second to start and load seeds.
        seconds = max(1, int(SMOKE_TOTAL / rounds) - 1)
    else:
        seconds = 60
    env = child_env()
    what = "replaying the seeds" if args.replay else f"{seconds} s each"
    print(f"fuzz: {len(names)} targets, {what}, {jobs} at a time; "
          f"picows from {picows_location(env)}", flush=True)

    started = time.monotonic()
    failed = False
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_target, name, seconds, env, args.keep_corpus, args.replay)
                   for name in names]
        for future in futures:
            r = future.result()
            bad = r.returncode != 0 or r.findings
            failed = failed or bad
            rate = r.execs / r.seconds if r.seconds else 0
            print(f"  {r.name:18} {'FINDING' if bad else 'ok':8} {r.seconds:6.1f} s "
                  f"{r.execs:9d} runs ({rate:7.0f}/s), {r.new_inputs} new inputs", flush=True)
            if bad:
                tail = "\n".join(r.log.strip().splitlines()[-40:])
                print(f"---- {r.name}: exit code {r.returncode}; last lines:\n{tail}\n----")
                for path in r.findings:
                    script = TARGETS[r.name][0]
                    print(f"  saved {os.path.relpath(path, ROOT)}; replay: "
                          f"python fuzz/{script} {os.path.relpath(path, ROOT)}")
    print(f"fuzz: {'FAILED' if failed else 'passed'} in {time.monotonic() - started:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Instructions per echo round trip, counted by callgrind: the tuning metric.

Wall-clock rates on a small VM move by 10-20% from run to run, far more than
most changes to the per-frame path. Callgrind counts the user-space
instructions a program executes, the same for the same binary and input
whatever else the machine does, so a change of 1% shows.

One process runs an echo client and an echo server over 127.0.0.1 (the same
listeners as the echo benchmark) for N round trips. The script runs it under
callgrind twice, with N1 and N2 round trips, and reports
(total(N2) - total(N1)) / (N2 - N1): start-up, imports and the handshake
cancel out, what is left is one round trip, client and server together.
Kernel time (the syscalls) is not counted.

    python benchmarks/instructions.py                  # picows and raw, 256 B, uvloop
    python benchmarks/instructions.py --size 64 --loop asyncio --libs picows
    python benchmarks/instructions.py --top 25         # also the costliest functions
    python benchmarks/instructions.py --libs picows.websockets,websockets --rounds 500,2500
    python benchmarks/instructions.py --libs picows.websockets,picows-pypi.websockets \
        --orig-python /tmp/orig-venv/bin/python --rounds 300,1300
    python benchmarks/instructions.py --save           # and keep it in benchmarks/results/

Needs valgrind. Runs the installed picows, else the in-place build of this
repository, like the echo benchmark.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile

# -- the echo, run in the child ----------------------------------------------


class _Rounds:
    """Stands in for contenders.Window: stops the client after N round trips."""

    def __init__(self, rounds: int):
        self.rounds = rounds
        self.count = 0
        self.done = asyncio.get_running_loop().create_future()

    @property
    def stop(self) -> bool:
        return self.count >= self.rounds

    def finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


def run_echo(lib: str, loop_name: str, size: int, rounds: int) -> None:
    """N round trips with the echo benchmark's own server and client
    (contenders.py), both in this process."""
    import contenders

    message = b"x" * size
    if lib not in ("picows", "raw", "websockets", "picows.websockets",
                   "picows-pypi", "picows-pypi.websockets"):
        raise SystemExit(f"unknown lib {lib!r}")

    async def main():
        server, port = await contenders.start_server(lib, "127.0.0.1", 0, None)
        window = _Rounds(rounds)
        await contenders.run_client(lib, "127.0.0.1", port, None, message, window)
        if hasattr(server, "close"):
            server.close()

    if loop_name == "uvloop":
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())


# -- the driver ------------------------------------------------------------------

_TOTAL = re.compile(r"^(?:summary|totals):\s+([\d,]+)", re.M)
_FN = re.compile(r"^\s*([\d,]+) \([^)]*\)\s+(?:\S+:)?(\S+?)(?: \[|$)", re.M)


def callgrind(lib, loop, size, rounds, outdir, top, orig_python=None):
    out = os.path.join(outdir, f"cg.{lib}.{loop}.{size}.{rounds}")
    python = sys.executable
    if lib.startswith("picows-pypi"):
        if not orig_python:
            raise SystemExit(f"{lib} needs --orig-python (a venv with the PyPI release)")
        python = orig_python
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           python, os.path.abspath(__file__), "--child", lib, loop,
           str(size), str(rounds)]
    # A fixed hash seed: dict layouts, and so a few instructions per round
    # trip, otherwise change from run to run.
    env = dict(os.environ, PYTHONHASHSEED="0")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    with open(out) as f:
        total = int(_TOTAL.search(f.read()).group(1).replace(",", ""))
    functions = {}
    if top:
        text = subprocess.run(["callgrind_annotate", "--threshold=100", out],
                              capture_output=True, text=True, check=True).stdout
        for m in _FN.finditer(text):
            name = m.group(2)
            functions[name] = functions.get(name, 0) + int(m.group(1).replace(",", ""))
    return total, functions


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        lib, loop, size, rounds = sys.argv[2:6]
        run_echo(lib, loop, int(size), int(rounds))
        return
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--libs", default="picows,raw",
                        help="picows, raw, websockets, picows.websockets, and with "
                             "--orig-python picows-pypi, picows-pypi.websockets")
    parser.add_argument("--orig-python", metavar="PYTHON",
                        help="interpreter whose environment has the PyPI picows")
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    parser.add_argument("--size", type=int, default=256, help="message size in bytes")
    parser.add_argument("--rounds", default="2000,12000",
                        help="N1,N2: round trips of the two runs")
    parser.add_argument("--top", type=int, default=0,
                        help="also list the N functions that cost the most per round trip")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--save", action="store_true",
                        help="also write them into benchmarks/results/ (appended to "
                             "YYYY-MM-DD-<commit>.md, and YYYY-MM-DD-<commit>-instructions.json)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed (apt-get install valgrind)")
    n1, n2 = (int(x) for x in args.rounds.split(","))
    results = {}
    lines = []
    with tempfile.TemporaryDirectory() as outdir:
        for lib in args.libs.split(","):
            t1, f1 = callgrind(lib, args.loop, args.size, n1, outdir, args.top,
                               args.orig_python)
            t2, f2 = callgrind(lib, args.loop, args.size, n2, outdir, args.top,
                               args.orig_python)
            per_rt = (t2 - t1) / (n2 - n1)
            results[lib] = per_rt
            lines.append(f"{lib:8s} {args.loop} {args.size} B: {per_rt:,.0f} instructions "
                         f"per round trip (client + server, user space)")
            print(lines[-1])
            if args.top:
                rows = sorted(((f2.get(k, 0) - f1.get(k, 0)) / (n2 - n1), k)
                              for k in set(f1) | set(f2))
                for cost, name in sorted(rows, reverse=True)[:args.top]:
                    print(f"    {cost:8.0f}  {name}")
    if "picows" in results and "raw" in results:
        lines.append(f"picows/raw: {results['picows'] / results['raw']:.2f}x the instructions")
        print(lines[-1])
    for other in ("websockets", "picows-pypi.websockets"):
        if "picows.websockets" in results and other in results:
            lines.append(f"picows.websockets/{other}: "
                         f"{results['picows.websockets'] / results[other]:.2f}x the instructions")
            print(lines[-1])
    cmd = "python benchmarks/instructions.py " + " ".join(sys.argv[1:])
    doc = {"command": cmd, "python": platform.python_version(), "loop": args.loop,
           "size": args.size, "rounds": [n1, n2], "instructions_per_round_trip": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    if args.save:
        import resultfile

        text = (f"Command: `{cmd}` (callgrind, user space, client + server; "
                f"Python {platform.python_version()})\n\n```\n" + "\n".join(lines) + "\n```")
        title = f"Instructions per round trip, {args.loop}, {args.size} B"
        for path in resultfile.save("instructions", title, text, doc):
            print(f"saved {os.path.relpath(path)}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""What the multi-process benchmarks (fanout.py, handshakes.py) share: the
event loop by name, CPU pinning, starting a child, and reading its
announcements."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys


def loop_run(loop_name: str, coro) -> object:
    """Run `coro` on uvloop or the default asyncio loop."""
    if loop_name == "uvloop":
        import uvloop
        return uvloop.run(coro)
    return asyncio.run(coro)


def pin(cpu: int | None) -> None:
    """Run this process on one CPU (None: anywhere)."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu % os.cpu_count()})


def expect(proc: subprocess.Popen, prefix: str) -> str:
    """The rest of the child's first stdout line that starts with `prefix`."""
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"child exited before {prefix!r}")
        if line.startswith(prefix):
            return line[len(prefix):].strip()


def spawn(script: str, role: str, lib: str, args: list[str], *, pin_cpu: bool) -> subprocess.Popen:
    """Run `script` again as a child in `role` for `lib` with `args`; it
    talks in lines on stdin and stdout."""
    cmd = [sys.executable, os.path.abspath(script), "--role", role, "--lib", lib, *args]
    if pin_cpu:
        cmd.append("--pin")
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

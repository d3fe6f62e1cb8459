"""What the multi-process benchmarks (fanout.py, handshakes.py) share: the
event loop by name, CPU pinning, and reading a child's announcements."""
from __future__ import annotations

import asyncio
import os
import subprocess


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

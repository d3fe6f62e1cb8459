"""An idle connection with permessage-deflate negotiated holds no zlib
memory: the streams are made on the first compressed message. Measured as
benchmarks/idle_memory.py does (the server's RSS growth over many idle
connections from another process); it was 95 KiB per connection, about
8.5 KiB without compression."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "benchmarks", "idle_memory.py")


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_idle_compressed_connection_costs_what_a_plain_one_does(loop):
    pytest.importorskip("psutil")
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    out = subprocess.run([sys.executable, SCRIPT, "-n", "400", "--loop", loop,
                          "--case", "compressed"], capture_output=True, text=True,
                         timeout=240, cwd=ROOT, check=True).stdout
    per_connection = float(re.search(r"([\d.]+) KiB per connection", out).group(1))
    # Generous: RSS moves in pages and arenas; zlib's streams were ~87 KiB.
    assert per_connection < 40, out

#!/usr/bin/env python3
"""Fuzz target: picows.handshake.parse_upgrade_request, the
server's upgrade-request parser, with and without allowed_origins.
See http_targets.py for what is checked.

Run: python fuzz/fuzz_upgrade_request.py [libFuzzer flags] [corpus dirs or files]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _entry import fuzz  # noqa: E402

if __name__ == "__main__":
    fuzz("http_targets", "upgrade_request_input", instrument=["picows"])

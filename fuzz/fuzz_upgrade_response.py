#!/usr/bin/env python3
"""Fuzz target: picows.handshake.parse_upgrade_response, the
client's upgrade-response parser.
See http_targets.py for what is checked.

Run: python fuzz/fuzz_upgrade_response.py [libFuzzer flags] [corpus dirs or files]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _entry import fuzz  # noqa: E402

if __name__ == "__main__":
    fuzz("http_targets", "upgrade_response_input", instrument=["picows"])

#!/usr/bin/env python3
"""Fuzz target: raw bytes to a client-role WSProtocol's handshake, in
fuzzer-chosen chunks: its outcome must be what parse_upgrade_response decides.
See http_targets.py for what is checked.

Run: python fuzz/fuzz_client_handshake.py [libFuzzer flags] [corpus dirs or files]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _entry import fuzz  # noqa: E402

if __name__ == "__main__":
    fuzz("http_targets", "client_handshake_input", instrument=["picows"])

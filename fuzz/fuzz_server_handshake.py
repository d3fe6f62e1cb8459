#!/usr/bin/env python3
"""Fuzz target: raw bytes to a server-role WSProtocol's handshake, in
fuzzer-chosen chunks: its answer must be what parse_upgrade_request decides.
See http_targets.py for what is checked.

Run: python fuzz/fuzz_server_handshake.py [libFuzzer flags] [corpus dirs or files]
"""
import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports(include=["http_targets", "_harness", "picows.handshake",
                                         "picows.types"]):
    import http_targets


def test_one_input(data: bytes) -> None:
    http_targets.server_handshake_input(data)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

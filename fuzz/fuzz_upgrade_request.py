#!/usr/bin/env python3
"""Fuzz target: picows.handshake.parse_upgrade_request, the
server's upgrade-request parser, with and without allowed_origins.
See http_targets.py for what is checked.

Run: python fuzz/fuzz_upgrade_request.py [libFuzzer flags] [corpus dirs or files]
"""
import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports(include=["http_targets", "_harness", "picows.handshake",
                                         "picows.types"]):
    import http_targets


def test_one_input(data: bytes) -> None:
    http_targets.upgrade_request_input(data)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

#!/usr/bin/env python3
"""Fuzz target: the frame parser in the server role (masked frames from a
client), after a valid upgrade request. See frames.py for what is checked.

Run: python fuzz/fuzz_frames_server.py [libFuzzer flags] [corpus dirs or files]
"""
import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports(include=["frames", "_harness"]):
    import frames


def test_one_input(data: bytes) -> None:
    frames.one_input(data, is_client=False)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

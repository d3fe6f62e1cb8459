#!/usr/bin/env python3
"""Fuzz target: the frame parser in the client role (unmasked frames from a
server), after a valid 101 response. See frames.py for what is checked.

Run: python fuzz/fuzz_frames_client.py [libFuzzer flags] [corpus dirs or files]
"""
import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports(include=["frames", "_harness"]):
    import frames


def test_one_input(data: bytes) -> None:
    frames.one_input(data, is_client=True)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

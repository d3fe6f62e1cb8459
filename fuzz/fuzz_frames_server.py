#!/usr/bin/env python3
"""Fuzz target: the frame parser in the server role (masked frames from a
client), after a valid upgrade request. See frames.py for what is checked.

Run: python fuzz/fuzz_frames_server.py [libFuzzer flags] [corpus dirs or files]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _entry import fuzz  # noqa: E402

if __name__ == "__main__":
    fuzz("frames", "one_input", is_client=False)

#!/usr/bin/env python3
"""Fuzz target: the frame parser in the client role (unmasked frames from a
server), after a valid 101 response. See frames.py for what is checked.

Run: python fuzz/fuzz_frames_client.py [libFuzzer flags] [corpus dirs or files]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _entry import fuzz  # noqa: E402

if __name__ == "__main__":
    fuzz("frames", "one_input", is_client=True)

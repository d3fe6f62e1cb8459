#!/usr/bin/env python3
"""Fuzz target: the permessage-deflate inflater, both roles, against a
reference inflater (Python's zlib). See inflater.py for the input format and
what is checked.

Run: python fuzz/fuzz_inflater.py [libFuzzer flags] [corpus dirs or files]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _entry import fuzz  # noqa: E402

if __name__ == "__main__":
    fuzz("inflater", "one_input")

#!/usr/bin/env python3
"""Fuzz target: the permessage-deflate inflater, both roles, against a
reference inflater (Python's zlib). See inflater.py for the input format and
what is checked.

Run: python fuzz/fuzz_inflater.py [libFuzzer flags] [corpus dirs or files]
"""
import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports(include=["inflater", "_harness"]):
    import inflater


def test_one_input(data: bytes) -> None:
    inflater.one_input(data)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

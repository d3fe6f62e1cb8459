"""What every fuzz_*.py script does: instrument the modules a target is made
of (atheris instruments whole top-level packages), then hand libFuzzer the
target function.

``module`` (frames or http_targets), _harness and tests.support (the fake
transport, the frame decoder) are always instrumented; ``instrument`` adds
packages, e.g. picows for the handshake parsers, which are plain Python.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Sequence


def fuzz(module: str, function: str, *, instrument: Sequence[str] = (), **kwargs: Any) -> None:
    import atheris

    with atheris.instrument_imports(include=[module, "_harness", "tests", *instrument]):
        target = getattr(importlib.import_module(module), function)

    def test_one_input(data: bytes) -> None:
        target(data, **kwargs)

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

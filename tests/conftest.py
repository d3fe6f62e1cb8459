"""Fixtures shared by every test directory. Keep this file small.

- autouse ``_no_loop_exceptions``: fails a test when anything reaches the
  running loop's exception handler (an exception in a callback, a task
  destroyed while pending, a future whose exception was never retrieved...),
  as uvloop's own test suite does.
- session-wide ``_gc_freeze``: keeps that fixture's per-test gc.collect() cheap.

The repository root is appended to ``sys.path`` (at the end, so an installed
picows still wins over the checkout) for ``import tests.support``.
"""
from __future__ import annotations

import asyncio
import gc
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.append(ROOT)


@pytest.fixture(scope="session", autouse=True)
def _gc_freeze():
    """Move what exists after collection (modules, test items) out of the
    collector's way, so the per-test gc.collect() below stays cheap."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(autouse=True)
async def _no_loop_exceptions():
    """Fail a test when anything reaches the loop's exception handler."""
    loop = asyncio.get_running_loop()
    calls: list[dict] = []
    previous = loop.get_exception_handler()

    def handler(_loop, context):
        calls.append(context)
        loop.default_exception_handler(context)  # prints it, with a traceback

    loop.set_exception_handler(handler)
    yield calls
    # "Future exception was never retrieved" and "Task was destroyed but it is
    # pending" are only reported when the object is collected: collect now, while
    # the handler is still ours, and give callbacks scheduled by it a turn.
    gc.collect()
    for _ in range(5):
        await asyncio.sleep(0)
    loop.set_exception_handler(previous)
    assert not calls, f"the loop exception handler was reached: {calls!r}"

"""Integration fixtures: every async test runs on both the asyncio and the
uvloop event loop, and tests taking ``net`` run over plain TCP and over TLS.

Loops are chosen with pytest-asyncio's ``pytest_asyncio_loop_factories`` hook
(pytest-asyncio >= 1.4); overriding the ``event_loop_policy`` fixture, the
older way, is deprecated there and warns. A test can narrow the loops with
``@pytest.mark.asyncio(loop_factories=["uvloop"])``.

The TLS certificate is made per session by ``trustme`` for 127.0.0.1.
"""
from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from tests.support import Net, tls_contexts


try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is not available on Windows
    uvloop = None

_version = tuple(int(p) for p in pytest_asyncio.__version__.split(".")[:2] if p.isdigit())
if _version < (1, 4):
    raise pytest.UsageError(
        "tests/integration needs pytest-asyncio >= 1.4 (pytest_asyncio_loop_factories hook)")


def pytest_asyncio_loop_factories(config, item):
    factories = {"asyncio": asyncio.SelectorEventLoop}
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


@pytest.fixture(scope="session")
def tls_pair():
    """(server context, client context): a trustme certificate for 127.0.0.1."""
    pytest.importorskip("trustme")
    contexts = tls_contexts()
    return contexts.server, contexts.client


@pytest.fixture(params=["tcp", "tls"])
def net(request) -> Net:
    """Plain TCP or TLS: where a test runs over both."""
    if request.param == "tcp":
        return Net("tcp")
    return Net("tls", *request.getfixturevalue("tls_pair"))


@pytest.fixture
def tcp() -> Net:
    return Net("tcp")


@pytest.fixture
def tls(tls_pair) -> Net:
    return Net("tls", *tls_pair)

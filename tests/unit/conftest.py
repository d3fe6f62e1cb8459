"""Fixtures of the unit tests; the helpers themselves live in wsutil.py.

- ``make_conn``: ``await make_conn("server" | "client", listener=None, **kwargs)``
  returns a ``wsutil.Conn``, a WSProtocol already past the handshake on a
  ``FakeTransport`` with a ``RecordingListener`` that copies frames.
- ``conn`` (parametrised over both roles), ``server``, ``client``: the same
  with default options.
- autouse ``_no_loop_exceptions``: fails a test that reaches the loop's
  exception handler (overrides the one of tests/conftest.py, same name).
"""
from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

# wsutil (and so picows) is imported inside the fixtures, so that the test
# files here that do not use picows still collect when it is not built.
WAIT = 2.0


@pytest.fixture
async def make_conn():
    """``await make_conn(role, listener=None, eof_capable=False, **WSProtocol kwargs)``.

    Returns a ``wsutil.Conn``; ``eof_capable`` gives a fake transport that can
    half-close (plain TCP) instead of one that cannot (TLS).

    At teardown every connection still open is closed by the "peer", and
    on_ws_disconnected must have run exactly once for each of them.
    """
    from wsutil import flush, open_conn

    conns: list[Any] = []

    async def factory(role: str, listener: Any | None = None, **kwargs) -> Any:
        conn = await open_conn(role, listener, **kwargs)
        conns.append(conn)
        return conn

    yield factory

    for conn in conns:
        if not conn.fake.lost:
            if conn.fake.closing:
                await asyncio.wait_for(conn.listener.disconnected_event.wait(), WAIT)
            else:
                conn.fake.peer_close()
    await flush()
    for conn in conns:
        assert len(conn.listener.disconnected) == 1, (
            f"on_ws_disconnected called {len(conn.listener.disconnected)} times")


@pytest.fixture(params=["server", "client"])
def role(request) -> str:
    return request.param


@pytest.fixture
async def conn(make_conn, role):
    """A connection past the handshake, for each role, default options."""
    return await make_conn(role)


@pytest.fixture
async def server(make_conn):
    return await make_conn("server")


@pytest.fixture
async def client(make_conn):
    return await make_conn("client")


@pytest.fixture(scope="session", autouse=True)
def _freeze_gc():
    """Move everything alive before the first test (modules, collected items,
    rewritten assertions) out of the collector's reach, so that the
    gc.collect() after every test only walks what the tests allocated: about
    0.2 ms instead of 20 ms, a third of the suite's run time."""
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
        loop.default_exception_handler(context)  # print it with its traceback

    loop.set_exception_handler(handler)
    yield calls
    # "exception was never retrieved" / "Task was destroyed" are reported on
    # collection: collect while the handler is still ours.
    gc.collect()
    for _ in range(5):
        await asyncio.sleep(0)
    loop.set_exception_handler(previous)
    assert not calls, f"the loop exception handler was reached: {calls!r}"

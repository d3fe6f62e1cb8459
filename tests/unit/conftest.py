"""Fixtures of the unit tests; the helpers themselves live in tests/support.

- ``make_conn``: ``await make_conn("server" | "client", listener=None, **kwargs)``
  returns a ``tests.support.Conn``, a WSProtocol already past the handshake
  on a ``FakeTransport`` with a ``RecordingListener`` that copies frames.
- ``conn`` (parametrised over both roles), ``server``, ``client``: the same
  with default options.
"""
from __future__ import annotations

from typing import Any

import pytest

from tests.support import open_conn


@pytest.fixture
async def make_conn():
    """``await make_conn(role, listener=None, eof_capable=False, **WSProtocol options)``.

    Returns a ``Conn``; ``eof_capable`` gives a fake transport that can
    half-close (plain TCP) instead of one that cannot (TLS).

    At teardown every connection still open is closed by the "peer", and
    on_ws_disconnected must have run exactly once for each of them.
    """
    conns: list[Any] = []

    async def factory(role: str, listener: Any | None = None, **kwargs) -> Any:
        conn = await open_conn(role, listener, **kwargs)
        conns.append(conn)
        return conn

    yield factory

    for conn in conns:
        await conn.finish()


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

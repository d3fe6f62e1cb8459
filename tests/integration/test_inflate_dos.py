"""A hostile peer's compressed frame cannot freeze the loop: one legal frame
of many tiny deflate streams (each ending with a BFINAL block, RFC 7692
7.2.3.4) is inflated in linear time, and the other connections of the
server keep being served. asyncio and uvloop, TCP and TLS."""
from __future__ import annotations

import asyncio
import contextlib
import time

from picows import WSMsgType

from tests.support import connect, serve

# 1 MiB of complete empty deflate streams: 524288 stream ends in one frame.
EMPTY_STREAMS = b"\x03\x00" * (1 << 19)


async def test_empty_streams_do_not_stall_other_connections(net):
    async with serve(net, enable_compression=True) as server:
        async with connect(net, server.url(), enable_compression=True) as (attacker, a_listener), \
                connect(net, server.url(), enable_compression=True) as (victim, v_listener):
            assert attacker.extensions is not None
            rtts: list[float] = []

            async def victim_echoes() -> None:
                # Round trips on the other connection all along the attack.
                while True:
                    sent = time.perf_counter()
                    victim.send(WSMsgType.BINARY, b"still there?")
                    assert (await v_listener.next_frame()).payload == b"still there?"
                    rtts.append(time.perf_counter() - sent)

            echoes = asyncio.create_task(victim_echoes())
            try:
                while not rtts:
                    await asyncio.sleep(0)
                started = time.perf_counter()
                # rsv1=True sends the bytes as they are: a compressed message.
                attacker.send(WSMsgType.BINARY, EMPTY_STREAMS, rsv1=True)
                # The server inflates it (to nothing) and echoes it; that
                # used to take seconds with the loop blocked.
                assert (await a_listener.next_frame()).payload == b""
                elapsed = time.perf_counter() - started
                count = len(rtts)
                while len(rtts) == count:
                    await asyncio.sleep(0)
            finally:
                echoes.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await echoes
            assert elapsed < 2.0, f"the hostile frame took {elapsed:.2f} s"
            assert max(rtts) < 2.0, f"the other connection waited {max(rtts):.2f} s"

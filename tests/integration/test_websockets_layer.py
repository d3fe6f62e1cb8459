"""picows.websockets on both ends: the receive path's promises (no
suspension for a buffered message, one wake-up per message, cancel-safe,
one reader at a time), flow control, broadcast framing once, close details,
route, and the import paths."""
from __future__ import annotations

import asyncio
import importlib
import sys

import pytest

import picows.websockets as ours
from picows.websockets.asyncio import broadcast as broadcast_module

from tests.support import Gathering, producer, wait_for


@pytest.fixture
async def echo_server():
    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async with ours.serve(echo, "127.0.0.1", 0) as server:
        yield server


def uri_of(server, path="/"):
    return f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}{path}"


def run_without_suspending(coro):
    """Run a coroutine that must complete without yielding to the loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("the coroutine suspended")


async def wait_until(predicate, timeout=10.0):
    async def poll():
        while not predicate():
            await asyncio.sleep(0.005)
    await wait_for(poll(), timeout)


async def test_import_paths():
    client = importlib.import_module("picows.websockets.asyncio.client")
    server = importlib.import_module("picows.websockets.asyncio.server")
    exceptions = importlib.import_module("picows.websockets.exceptions")
    assert client.connect is ours.connect and client.ClientConnection is ours.ClientConnection
    assert server.serve is ours.serve and server.broadcast is ours.broadcast
    assert server.basic_auth is ours.basic_auth
    assert exceptions.ConnectionClosedOK is ours.ConnectionClosedOK
    for name in ours.__all__:
        assert getattr(ours, name) is not None


async def test_buffered_message_returned_without_suspending(echo_server):
    async with ours.connect(uri_of(echo_server)) as ws:
        await ws.send("one")
        await ws.send(b"two")
        await wait_until(lambda: len(ws._messages) == 2)
        assert run_without_suspending(ws.recv()) == "one"
        assert run_without_suspending(ws.recv()) == b"two"


async def test_waiting_recv_woken_once_per_message(echo_server):
    async with ours.connect(uri_of(echo_server)) as ws:
        futures = 0
        real_create_future = ws._create_future

        def counting_create_future(**kwargs):
            nonlocal futures
            futures += 1
            return real_create_future(**kwargs)

        ws._create_future = counting_create_future
        try:
            task = asyncio.ensure_future(ws.recv())
            await asyncio.sleep(0)
            await ws.send("x")
            assert await wait_for(task) == "x"
        finally:
            ws._create_future = real_create_future
        # One future parked, resolved once by on_ws_frame.
        assert futures == 1


async def test_recv_is_cancel_safe(echo_server):
    async with ours.connect(uri_of(echo_server)) as ws:
        task = asyncio.ensure_future(ws.recv())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await ws.send("kept")
        assert await wait_for(ws.recv()) == "kept"


async def test_concurrent_recv_raises(echo_server):
    async with ours.connect(uri_of(echo_server)) as ws:
        first = asyncio.ensure_future(ws.recv())
        await asyncio.sleep(0)
        with pytest.raises(ours.ConcurrencyError):
            await ws.recv()
        await ws.send("x")
        assert await wait_for(first) == "x"


async def test_send_types(echo_server):
    async with ours.connect(uri_of(echo_server)) as ws:
        await ws.send(bytearray(b"ba"))
        assert await wait_for(ws.recv()) == b"ba"
        await ws.send(memoryview(b"mv"))
        assert await wait_for(ws.recv()) == b"mv"
        with pytest.raises(TypeError):
            await ws.send(42)
        with pytest.raises(TypeError):
            await ws.send({"a": 1})
        await ws.send([])  # nothing sent
        await ws.send("after")
        assert await wait_for(ws.recv()) == "after"


async def test_mixed_fragment_types_fail_the_connection(echo_server):
    async with ours.connect(uri_of(echo_server)) as ws:
        with pytest.raises(TypeError):
            await ws.send(["text", b"bytes"])
        await wait_for(ws.wait_closed())
        assert ws._close_sent.code == 1011


async def test_max_queue_pauses_and_resumes_reading():
    async with ours.serve(producer(50), "127.0.0.1", 0) as server:
        async with ours.connect(uri_of(server), max_queue=(8, 2)) as ws:
            underlying = ws.transport
            await wait_until(lambda: ws._reading_paused)
            assert ws._frames >= 8
            received = []
            # Reading resumes only at the low-water mark.
            while ws._frames > 3:
                received.append(await ws.recv())
                assert ws._reading_paused
            received.append(await ws.recv())
            assert not ws._reading_paused
            if hasattr(underlying, "is_reading"):
                assert underlying.is_reading()
            while len(received) < 50:
                received.append(await wait_for(ws.recv()))
            assert received == [str(i) for i in range(50)]


async def test_max_queue_none_is_unbounded():
    async with ours.serve(producer(100), "127.0.0.1", 0) as server:
        async with ours.connect(uri_of(server), max_queue=None) as ws:
            await wait_until(lambda: len(ws._messages) == 100)
            assert not ws._reading_paused


async def test_close_while_paused_still_completes():
    async with ours.serve(producer(100), "127.0.0.1", 0) as server:
        ws = await ours.connect(uri_of(server), max_queue=2)
        await wait_until(lambda: ws._reading_paused)
        await wait_for(ws.close(), 5)
        assert ws.state is ours.State.CLOSED
        assert ws.close_code == 1000


async def test_broadcast_frames_once(monkeypatch):
    """One call of the core's frame-once broadcast for all the connections."""
    calls = []
    real = broadcast_module._core_broadcast

    def counting(transports, msg_type, message):
        calls.append(len(transports))
        return real(transports, msg_type, message)

    monkeypatch.setattr(broadcast_module, "_core_broadcast", counting)
    gathering = Gathering(4)
    conns = gathering.conns

    async with ours.serve(gathering.handler, "127.0.0.1", 0) as server:
        clients = [await ours.connect(uri_of(server), compression=None) for _ in range(3)]
        clients.append(await ours.connect(uri_of(server)))  # compressed: own copy
        await gathering.broadcast_and_check(ours.broadcast, clients, "hi all", b"\x01" * 70000)
        assert calls == [4, 4]
        # Closed connections are skipped; a bad type raises.
        await clients[0].close()
        await wait_until(lambda: conns[0].state is ours.State.CLOSED)
        ours.broadcast(conns, "again")
        for client in clients[1:]:
            assert await wait_for(client.recv()) == "again"
        with pytest.raises(TypeError):
            ours.broadcast(conns, 42)
        for client in clients:
            await client.close()


async def test_broadcast_skips_fragmented_send():
    release = asyncio.Event()
    conns = []

    async def handler(ws):
        conns.append(ws)

        async def slow():
            yield "a"
            await release.wait()
            yield "b"
        await ws.send(slow())
        await ws.wait_closed()

    async with ours.serve(handler, "127.0.0.1", 0) as server:
        async with ours.connect(uri_of(server)) as ws:
            try:
                await wait_until(lambda: conns and conns[0]._fragmented_send is not None)
                with pytest.raises(Exception) as raised:
                    ours.broadcast(conns, "x", raise_exceptions=True)
                if sys.version_info >= (3, 11):
                    assert "skipped broadcast" in str(raised.value)
                else:   # no ExceptionGroup: the first failure
                    assert isinstance(raised.value, ours.ConcurrencyError)
            finally:
                release.set()
            assert await wait_for(ws.recv()) == "ab"


async def test_close_details_and_state(echo_server):
    ws = await ours.connect(uri_of(echo_server))
    assert ws.state is ours.State.OPEN and ws.close_code is None and ws.close_reason is None
    await ws.close(4001, "custom reason")
    assert ws.state is ours.State.CLOSED
    assert ws.close_code == 4001 and ws.close_reason == ""  # the core echoes the code only
    with pytest.raises(ours.ConnectionClosedError) as raised:
        await ws.recv()
    assert raised.value.sent == ours.Close(4001, "custom reason")
    assert raised.value.rcvd_then_sent is False
    assert "sent 4001 (private use) custom reason; then received 4001" in str(raised.value)
    await ws.close()  # idempotent


async def test_ping_after_close_raises(echo_server):
    ws = await ours.connect(uri_of(echo_server))
    waiter = await ws.ping()
    await ws.close()
    await wait_for(waiter)
    with pytest.raises(ours.ConnectionClosedOK):
        await ws.ping()
    with pytest.raises(ours.ConnectionClosedOK):
        await ws.pong()


async def test_duplicate_ping_payload_raises(echo_server):
    async with ours.connect(uri_of(echo_server)) as ws:
        ws.transport.pause_reading()
        first = await ws.ping(b"same")
        with pytest.raises(ours.ConcurrencyError):
            await ws.ping(b"same")
        ws.transport.resume_reading()
        await wait_for(first)


async def test_keepalive_timeout_closes_1011():
    async def handler(ws):
        # Stop reading for a while: the client's PINGs stay unanswered.
        ws.transport.pause_reading()
        await asyncio.sleep(0.5)
        ws.transport.resume_reading()
        await ws.wait_closed()

    async with ours.serve(handler, "127.0.0.1", 0) as server:
        ws = await ours.connect(uri_of(server), ping_interval=0.05, ping_timeout=0.1,
                                close_timeout=0.5)
        with pytest.raises(ours.ConnectionClosedError) as raised:
            await wait_for(ws.recv())
        assert raised.value.sent.code == 1011
        assert raised.value.sent.reason == "keepalive ping timeout"


async def test_connect_errors():
    with pytest.raises(ours.InvalidURI):
        await ours.connect("http://127.0.0.1/")
    with pytest.raises(OSError):
        await ours.connect("ws://127.0.0.1:1/", open_timeout=5)
    with pytest.raises(ValueError):
        await ours.connect("ws://127.0.0.1:1/", ssl=True)


async def test_open_timeout():
    async def silent(reader, writer):
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with pytest.raises(TimeoutError):
        await ours.connect(f"ws://127.0.0.1:{port}/", open_timeout=0.2)
    server.close()


async def test_server_closed_during_handshake_is_invalid_message():
    async def close_at_once(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with pytest.raises(ours.InvalidMessage) as raised:
        await ours.connect(f"ws://127.0.0.1:{port}/")
    assert ours.process_exception(raised.value) is None  # retried by async for
    server.close()


async def test_route():
    pytest.importorskip("werkzeug")
    from werkzeug.routing import Map, Rule

    async def hello(ws, name):
        await ws.send(f"hello {name}")

    url_map = Map([Rule("/hello/<name>", endpoint=hello)])
    async with ours.route(url_map, "127.0.0.1", 0) as server:
        async with ours.connect(uri_of(server, "/hello/you")) as ws:
            assert await wait_for(ws.recv()) == "hello you"


async def test_server_properties_and_connections():
    started = asyncio.Event()

    async def handler(ws):
        started.set()
        await ws.wait_closed()

    server = await ours.serve(handler, "127.0.0.1", 0)
    assert server.is_serving() and server.get_loop() is asyncio.get_running_loop()
    ws = await ours.connect(uri_of(server))
    await wait_for(started.wait())
    assert len(server.connections) == 1
    (conn,) = server.connections
    assert conn.request.path == "/" and conn.response.status_code == 101
    server.close(close_connections=False)
    await asyncio.sleep(0.05)
    assert ws.state is ours.State.OPEN  # still open
    await ws.close()
    await wait_for(server.wait_closed())


async def test_create_connection_subclass(echo_server):
    class Mine(ours.ClientConnection):
        marker = True

    async with ours.connect(uri_of(echo_server), create_connection=Mine) as ws:
        assert isinstance(ws, Mine)


async def test_async_hooks_on_both_ends():
    seen = []

    async def process_request(connection, request):
        await asyncio.sleep(0)
        seen.append(("request", request.path))

    async def process_response(connection, request, response):
        await asyncio.sleep(0)
        seen.append(("response", response.status_code))
        response.headers["X-Seen"] = str(len(seen))

    async with ours.serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0,
                          process_request=process_request,
                          process_response=process_response) as server:
        async with ours.connect(uri_of(server, "/a")) as ws:
            assert ws.response.headers["X-Seen"] == "2"
    assert seen == [("request", "/a"), ("response", 101)]

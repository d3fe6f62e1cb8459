"""picows.websockets against the real ``websockets`` package, both ways.

Every test runs twice per loop: our ``connect`` against websockets' ``serve``
("ours-theirs"), and websockets' ``connect`` against our ``serve``
("theirs-ours"). Both libraries take the same arguments, which is the point
of the layer; ``ends`` picks the implementation of each side, and
``ends.client_exc`` / ``ends.server_exc`` the exception classes of a side.
"""
from __future__ import annotations

import asyncio
import http
import os
import re
from typing import Any

import pytest
import websockets.asyncio.client as their_client
import websockets.asyncio.server as their_server
import websockets.exceptions as their_exceptions

import picows.websockets as ours
import picows.websockets.asyncio.client as our_client
import picows.websockets.asyncio.server as our_server
import picows.websockets.exceptions as our_exceptions

from tests.support import Gathering, wait_for

class Ends:
    """Which library is the client and which the server."""

    def __init__(self, client: str, server: str) -> None:
        self.client = client
        self.server = server
        self.connect = our_client.connect if client == "picows" else their_client.connect
        self.serve_fn = our_server.serve if server == "picows" else their_server.serve
        self.broadcast = our_server.broadcast if server == "picows" else their_server.broadcast
        self.client_exc = our_exceptions if client == "picows" else their_exceptions
        self.server_exc = our_exceptions if server == "picows" else their_exceptions
        self.uri = ""

    def serve(self, handler: Any, **kwargs: Any) -> Any:
        return self.serve_fn(handler, "127.0.0.1", 0, **kwargs)

    def uri_of(self, server: Any, path: str = "/", scheme: str = "ws") -> str:
        port = server.sockets[0].getsockname()[1]
        return f"{scheme}://127.0.0.1:{port}{path}"


@pytest.fixture(params=[("picows", "websockets"), ("websockets", "picows")],
                ids=["ours-theirs", "theirs-ours"])
def ends(request) -> Ends:
    return Ends(*request.param)


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


# -- messages ------------------------------------------------------------------

@pytest.mark.parametrize("compression", ["deflate", None])
async def test_echo_text_and_binary(ends, compression):
    async with ends.serve(echo, compression=compression) as server:
        async with ends.connect(ends.uri_of(server), compression=compression) as ws:
            for message in ["hello", "", "é" * 1000, b"\x00\x01", b"", bytes(70000)]:
                await ws.send(message)
                assert await wait_for(ws.recv()) == message
            await ws.send(b"caf\xc3\xa9", text=True)
            assert await wait_for(ws.recv()) == "café"
            await ws.send("bin", text=False)
            assert await wait_for(ws.recv()) == b"bin"
            await ws.send("decode me")
            assert await wait_for(ws.recv(decode=False)) == b"decode me"
            await ws.send(b"\xc3\xa9")
            assert await wait_for(ws.recv(decode=True)) == "é"


async def test_compression_negotiated(ends):
    async with ends.serve(echo) as server:
        async with ends.connect(ends.uri_of(server)) as ws:
            assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
            await ws.send("x" * 100000)
            assert await wait_for(ws.recv()) == "x" * 100000
        async with ends.connect(ends.uri_of(server), compression=None) as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response.headers


async def test_compression_agreement_is_websockets(ends):
    """compression="deflate" agrees on what websockets agrees on with
    itself: the server asks for 12-bit windows both ways."""
    async with ends.serve(echo) as server:
        async with ends.connect(ends.uri_of(server)) as ws:
            agreed = sorted(p.strip() for p in
                            ws.response.headers["Sec-WebSocket-Extensions"].split(";"))
            assert agreed == ["client_max_window_bits=12", "permessage-deflate",
                              "server_max_window_bits=12"]
            for n in (10, 5000, 100000):
                await ws.send("q" * n)
                assert await wait_for(ws.recv()) == "q" * n


async def test_compression_settings_object():
    """picows only: compression= takes a WSCompression, on both ends."""
    from picows import WSCompression
    settings = WSCompression(server_no_context_takeover=True, level=6)
    async with our_server.serve(echo, "127.0.0.1", 0, compression=settings) as server:
        port = server.sockets[0].getsockname()[1]
        async with their_client.connect(f"ws://127.0.0.1:{port}/") as ws:
            assert "server_no_context_takeover" in ws.response.headers[
                "Sec-WebSocket-Extensions"]
            await ws.send("q" * 3000)
            assert await wait_for(ws.recv()) == "q" * 3000
        async with our_client.connect(f"ws://127.0.0.1:{port}/", compression=WSCompression(
                client_no_context_takeover=True)) as ws:
            assert "client_no_context_takeover" in ws.request.headers[
                "Sec-WebSocket-Extensions"]
            await ws.send("q" * 3000)
            assert await wait_for(ws.recv()) == "q" * 3000
    with pytest.raises(ValueError, match="unsupported compression"):
        our_client.connect("ws://127.0.0.1:1/", compression="zstd")


async def test_fragmented_send_and_recv_streaming(ends):
    async def handler(ws):
        await ws.send(["frag", "ment", "ed"])
        await ws.send(iter([b"a", b"b"]))

        async def agen():
            for part in ("x", "y", "z"):
                yield part
        await ws.send(agen())
        # And receive fragments from the client.
        await ws.send(await ws.recv())
        await ws.wait_closed()

    async with ends.serve(handler) as server:
        async with ends.connect(ends.uri_of(server)) as ws:
            chunks = [c async for c in ws.recv_streaming()]
            assert "".join(chunks) == "fragmented"
            assert len(chunks) >= 3
            assert await wait_for(ws.recv()) == b"ab"
            assert await wait_for(ws.recv()) == "xyz"
            await ws.send([b"1", b"2", b"3"])
            assert await wait_for(ws.recv()) == b"123"


async def test_async_for_ends_on_normal_close(ends):
    async def handler(ws):
        for i in range(3):
            await ws.send(str(i))
        await ws.close()

    async with ends.serve(handler) as server:
        async with ends.connect(ends.uri_of(server)) as ws:
            received = [m async for m in ws]
            assert received == ["0", "1", "2"]
            assert ws.close_code == 1000


# -- closing -------------------------------------------------------------------

@pytest.mark.parametrize("code", [1000, 1001])
async def test_connection_closed_ok(ends, code):
    async def handler(ws):
        await ws.close(code, "bye")

    async with ends.serve(handler) as server:
        async with ends.connect(ends.uri_of(server)) as ws:
            with pytest.raises(ends.client_exc.ConnectionClosedOK) as raised:
                await wait_for(ws.recv())
            assert raised.value.rcvd.code == code
            assert raised.value.rcvd.reason == "bye"
            assert raised.value.sent.code == code
            assert raised.value.rcvd_then_sent is True
            assert ws.close_code == code and ws.close_reason == "bye"
            with pytest.raises(ends.client_exc.ConnectionClosedOK):
                await ws.send("too late")


async def test_connection_closed_error(ends):
    async def handler(ws):
        await ws.close(4000, "custom")

    async with ends.serve(handler) as server:
        async with ends.connect(ends.uri_of(server)) as ws:
            with pytest.raises(ends.client_exc.ConnectionClosedError) as raised:
                await wait_for(ws.recv())
            assert raised.value.rcvd.code == 4000
            assert ws.close_code == 4000


async def test_handler_exception_closes_1011(ends):
    async def handler(ws):
        raise RuntimeError("boom")

    async with ends.serve(handler) as server:
        async with ends.connect(ends.uri_of(server)) as ws:
            with pytest.raises(ends.client_exc.ConnectionClosedError) as raised:
                await wait_for(ws.recv())
            assert raised.value.rcvd.code == 1011


async def test_client_close_seen_by_server(ends):
    seen: asyncio.Future = asyncio.get_running_loop().create_future()

    async def handler(ws):
        try:
            await ws.recv()
        except ends.server_exc.ConnectionClosed as exc:
            seen.set_result((type(exc).__name__, exc.rcvd.code, exc.rcvd.reason))

    async with ends.serve(handler) as server:
        async with ends.connect(ends.uri_of(server)) as ws:
            await ws.close(1001, "leaving")
            assert ws.state.name == "CLOSED"
        assert await wait_for(seen) == ("ConnectionClosedOK", 1001, "leaving")


async def test_server_close_sends_1001(ends):
    started = asyncio.Event()

    async def handler(ws):
        started.set()
        await ws.wait_closed()

    server = await ends.serve(handler)
    ws = await ends.connect(ends.uri_of(server))
    await wait_for(started.wait())
    server.close()
    await wait_for(server.wait_closed())
    with pytest.raises(ends.client_exc.ConnectionClosedOK) as raised:
        await wait_for(ws.recv())
    assert raised.value.rcvd.code == 1001


# -- limits --------------------------------------------------------------------

async def test_max_size_whole_message_across_fragments(ends):
    """max_size applies to the message, not to each frame: 1009."""
    async def handler(ws):
        await ws.send([b"x" * 600, b"x" * 600])  # 1200 bytes in two frames
        await ws.wait_closed()

    async with ends.serve(handler) as server:
        async with ends.connect(ends.uri_of(server), max_size=1000) as ws:
            with pytest.raises(ends.client_exc.ConnectionClosedError) as raised:
                await wait_for(ws.recv())
            assert raised.value.sent.code == 1009


async def test_max_size_server_side(ends):
    async with ends.serve(echo, max_size=1000) as server:
        async with ends.connect(ends.uri_of(server)) as ws:
            await ws.send(["y" * 600, "y" * 600])
            with pytest.raises(ends.client_exc.ConnectionClosedError) as raised:
                await wait_for(ws.recv())
            assert raised.value.rcvd.code == 1009


async def test_max_size_single_frame(ends):
    async with ends.serve(echo) as server:
        async with ends.connect(ends.uri_of(server), max_size=100) as ws:
            await ws.send(b"z" * 50)
            assert await wait_for(ws.recv()) == b"z" * 50
            await ws.send(b"z" * 101)
            with pytest.raises(ends.client_exc.ConnectionClosedError) as raised:
                await wait_for(ws.recv())
            assert raised.value.sent.code == 1009


async def test_max_queue_bounds_buffering(ends):
    """The reader does not read: the sender ends up blocked (flow control end
    to end), and everything arrives once the reader reads."""
    count = 400  # 26 MB: more than loopback's socket buffers hold
    sent_all = asyncio.Event()
    block = os.urandom(65536)

    async def handler(ws):
        for i in range(count):
            await ws.send(block + i.to_bytes(4, "big"))
        sent_all.set()
        await ws.wait_closed()

    async with ends.serve(handler, write_limit=1000, compression=None) as server:
        async with ends.connect(ends.uri_of(server), max_queue=4) as ws:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(sent_all.wait(), 0.5)
            for i in range(count):
                message = await wait_for(ws.recv())
                assert int.from_bytes(message[-4:], "big") == i
            await wait_for(sent_all.wait())


# -- pings ---------------------------------------------------------------------

async def test_ping_latency_and_pong(ends):
    async with ends.serve(echo) as server:
        async with ends.connect(ends.uri_of(server)) as ws:
            waiter = await ws.ping()
            latency = await wait_for(waiter)
            assert isinstance(latency, float) and latency >= 0
            waiter = await ws.ping(b"custom")
            assert await wait_for(waiter) >= 0
            assert ws.latency >= 0
            await ws.pong(b"unsolicited")
            await ws.send("still ok")
            assert await wait_for(ws.recv()) == "still ok"


async def test_keepalive_measures_latency(ends):
    async with ends.serve(echo) as server:
        async with ends.connect(ends.uri_of(server), ping_interval=0.05) as ws:
            for _ in range(200):
                if ws.latency > 0:
                    break
                await asyncio.sleep(0.02)
            assert ws.latency > 0


# -- handshake -----------------------------------------------------------------

async def test_request_response_and_addresses(ends):
    seen: asyncio.Future = asyncio.get_running_loop().create_future()

    async def handler(ws):
        seen.set_result((ws.request.path, ws.request.headers.get("X-Token"),
                         ws.request.headers.get("Origin"),
                         ws.request.headers.get("User-Agent"), ws.remote_address))
        await ws.wait_closed()

    async with ends.serve(handler) as server:
        async with ends.connect(ends.uri_of(server, "/path?q=1"),
                                additional_headers={"X-Token": "t0k"},
                                origin="https://example.com",
                                user_agent_header="agent/1") as ws:
            path, token, origin, agent, remote = await wait_for(seen)
            assert path == "/path?q=1"
            assert (token, origin, agent) == ("t0k", "https://example.com", "agent/1")
            assert remote == ws.local_address
            assert ws.remote_address[1] == server.sockets[0].getsockname()[1]
            assert ws.response.status_code == 101
            assert ws.request.headers["X-Token"] == "t0k"
            assert ws.id is not None
            assert ws.state.name == "OPEN"


async def test_invalid_status_has_the_response(ends):

    def process_request(connection, request):
        return connection.respond(http.HTTPStatus.FORBIDDEN, "nope\n")

    async with ends.serve(echo, process_request=process_request) as server:
        with pytest.raises(ends.client_exc.InvalidStatus) as raised:
            await ends.connect(ends.uri_of(server))
        assert raised.value.response.status_code == 403


async def test_process_request_passes(ends):
    calls = []

    def process_request(connection, request):
        calls.append(request.path)
        return None

    async with ends.serve(echo, process_request=process_request) as server:
        async with ends.connect(ends.uri_of(server, "/ok")) as ws:
            await ws.send("x")
            assert await wait_for(ws.recv()) == "x"
    assert calls == ["/ok"]


async def test_process_response_adds_header(ends):

    def process_response(connection, request, response):
        response.headers["X-Extra"] = "1"

    async with ends.serve(echo, process_response=process_response) as server:
        async with ends.connect(ends.uri_of(server)) as ws:
            assert ws.response.headers["X-Extra"] == "1"


# -- async process_request / process_response (coroutine functions) ---------------

async def test_async_process_request_passes(ends):
    calls = []

    async def process_request(connection, request):
        await asyncio.sleep(0)          # really suspends the upgrade
        calls.append(request.path)
        return None

    async with ends.serve(echo, process_request=process_request) as server:
        async with ends.connect(ends.uri_of(server, "/ok")) as ws:
            await ws.send("x")
            assert await wait_for(ws.recv()) == "x"
    assert calls == ["/ok"]


async def test_async_process_request_refuses(ends):
    async def process_request(connection, request):
        await asyncio.sleep(0)
        response = connection.respond(http.HTTPStatus.FORBIDDEN, "no\n")
        response.headers["X-Why"] = "policy"
        return response

    async with ends.serve(echo, process_request=process_request) as server:
        with pytest.raises(ends.client_exc.InvalidStatus) as raised:
            await ends.connect(ends.uri_of(server))
    assert raised.value.response.status_code == 403
    assert raised.value.response.headers["X-Why"] == "policy"


async def test_async_process_request_raising_is_500(ends, caplog):
    async def process_request(connection, request):
        await asyncio.sleep(0)
        raise RuntimeError("boom")

    async with ends.serve(echo, process_request=process_request) as server:
        with pytest.raises(ends.client_exc.InvalidStatus) as raised:
            await ends.connect(ends.uri_of(server))
    assert raised.value.response.status_code == 500
    assert "boom" in caplog.text


async def test_async_process_response_modifies_and_replaces(ends):
    async def add_header(connection, request, response):
        await asyncio.sleep(0)
        response.headers["X-Extra"] = "async"

    async with ends.serve(echo, process_response=add_header) as server:
        async with ends.connect(ends.uri_of(server)) as ws:
            assert ws.response.headers["X-Extra"] == "async"
            await ws.send("still open")
            assert await wait_for(ws.recv()) == "still open"

    async def replace(connection, request, response):
        await asyncio.sleep(0)
        return connection.respond(http.HTTPStatus.IM_A_TEAPOT, "short and stout\n")

    async with ends.serve(echo, process_response=replace) as server:
        with pytest.raises(ends.client_exc.InvalidStatus) as raised:
            await ends.connect(ends.uri_of(server))
    assert raised.value.response.status_code == 418


async def test_async_process_request_then_sync_process_response(ends):
    order = []

    async def process_request(connection, request):
        await asyncio.sleep(0)
        order.append("request")

    def process_response(connection, request, response):
        order.append("response")
        response.headers["X-Order"] = ",".join(order)

    async with ends.serve(echo, process_request=process_request,
                          process_response=process_response) as server:
        async with ends.connect(ends.uri_of(server)) as ws:
            assert ws.response.headers["X-Order"] == "request,response"


@pytest.mark.parametrize("password, accepted", [("pass", True), ("wrong", False)])
async def test_basic_auth_async_check_credentials(ends, password, accepted):
    async def check(username, password):
        await asyncio.sleep(0)
        return (username, password) == ("user", "pass")

    module = ours if ends.server == "picows" else their_server
    auth = module.basic_auth(realm="r", check_credentials=check)
    users: asyncio.Future = asyncio.get_running_loop().create_future()

    async def handler(ws):
        users.set_result(ws.username)
        await ws.wait_closed()

    async with ends.serve(handler, process_request=auth) as server:
        port = server.sockets[0].getsockname()[1]
        uri = f"ws://user:{password}@127.0.0.1:{port}/"
        if accepted:
            async with ends.connect(uri):
                assert await wait_for(users) == "user"
        else:
            with pytest.raises(ends.client_exc.InvalidStatus) as raised:
                await ends.connect(uri)
            assert raised.value.response.status_code == 401


async def test_server_closing_during_async_process_request_is_503():
    # Our serve, their connect: websockets' server answers 503 here too.
    entered = asyncio.Event()
    release = asyncio.Event()

    async def process_request(connection, request):
        entered.set()
        await release.wait()

    async with ours.serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        port = server.sockets[0].getsockname()[1]
        attempt = asyncio.ensure_future(their_client.connect(f"ws://127.0.0.1:{port}/"))
        await wait_for(entered.wait())
        server.close()
        release.set()
        with pytest.raises(their_exceptions.InvalidStatus) as raised:
            await wait_for(attempt)
    assert raised.value.response.status_code == 503


async def test_slow_async_process_request_bounded_by_open_timeout():
    # Our serve, their connect: the hook's task is cancelled at open_timeout
    # and the connection dropped without an answer.
    cancelled = asyncio.Event()

    async def process_request(connection, request):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with ours.serve(echo, "127.0.0.1", 0, process_request=process_request,
                          open_timeout=0.2) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(their_exceptions.InvalidHandshake):
            await wait_for(their_client.connect(f"ws://127.0.0.1:{port}/"))
        await wait_for(cancelled.wait())


async def test_subprotocol_negotiated(ends):
    chosen: asyncio.Future = asyncio.get_running_loop().create_future()

    async def handler(ws):
        chosen.set_result(ws.subprotocol)
        await ws.wait_closed()

    async with ends.serve(handler, subprotocols=["chat", "superchat"]) as server:
        async with ends.connect(ends.uri_of(server),
                                subprotocols=["superchat", "chat"]) as ws:
            assert ws.subprotocol == "chat"
            assert await wait_for(chosen) == "chat"


async def test_no_subprotocol_in_common_400(ends):
    async with ends.serve(echo, subprotocols=["chat"]) as server:
        with pytest.raises(ends.client_exc.InvalidStatus) as raised:
            await ends.connect(ends.uri_of(server), subprotocols=["other"])
        assert raised.value.response.status_code == 400


async def test_select_subprotocol_none_continues(ends):
    async with ends.serve(echo, select_subprotocol=lambda conn, offered: None) as server:
        async with ends.connect(ends.uri_of(server), subprotocols=["other"]) as ws:
            assert ws.subprotocol is None
            await ws.send("ok")
            assert await wait_for(ws.recv()) == "ok"


async def test_origins_allowed(ends):
    async with ends.serve(echo, origins=["https://good.example",
                                         re.compile(r"https://.*\.ok\.example")]) as server:
        for origin in ["https://good.example", "https://a.ok.example"]:
            async with ends.connect(ends.uri_of(server), origin=origin) as ws:
                await ws.send("in")
                assert await wait_for(ws.recv()) == "in"


async def test_origin_refused_403(ends):
    async with ends.serve(echo, origins=["https://good.example"]) as server:
        with pytest.raises(ends.client_exc.InvalidStatus) as raised:
            await ends.connect(ends.uri_of(server), origin="https://evil.example")
        assert raised.value.response.status_code == 403


async def test_basic_auth_accepts(ends):
    if ends.server == "picows":
        auth = ours.basic_auth(realm="r", credentials=("user", "pass"))
    else:
        auth = their_server.basic_auth(realm="r", credentials=("user", "pass"))
    users: asyncio.Future = asyncio.get_running_loop().create_future()

    async def handler(ws):
        users.set_result(ws.username)
        await ws.wait_closed()

    async with ends.serve(handler, process_request=auth) as server:
        port = server.sockets[0].getsockname()[1]
        async with ends.connect(f"ws://user:pass@127.0.0.1:{port}/"):
            assert await wait_for(users) == "user"


async def test_basic_auth_refuses_401(ends):
    if ends.server == "picows":
        auth = ours.basic_auth(realm="r", credentials=("user", "pass"))
    else:
        auth = their_server.basic_auth(realm="r", credentials=("user", "pass"))
    async with ends.serve(echo, process_request=auth) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ends.client_exc.InvalidStatus) as raised:
            await ends.connect(f"ws://user:wrong@127.0.0.1:{port}/")
        assert raised.value.response.status_code == 401


async def test_redirect_followed(ends):

    def redirect(connection, request):
        if request.path == "/old":
            response = connection.respond(http.HTTPStatus.FOUND, "")
            response.headers["Location"] = "/new"
            return response
        return None

    async with ends.serve(echo, process_request=redirect) as server:
        async with ends.connect(ends.uri_of(server, "/old")) as ws:
            assert ws.request.path == "/new"
            await ws.send("moved")
            assert await wait_for(ws.recv()) == "moved"


async def test_reconnecting_iterator(ends):
    """async for connect(...) reconnects after the server closed."""
    async def handler(ws):
        await ws.send("hi")
        await ws.close()

    async with ends.serve(handler) as server:
        sessions = 0
        async for ws in ends.connect(ends.uri_of(server)):
            try:
                assert await wait_for(ws.recv()) == "hi"
                await wait_for(ws.recv())
            except ends.client_exc.ConnectionClosed:
                sessions += 1
                if sessions == 3:
                    break
                continue
        assert sessions == 3


async def test_tls(ends, tls_pair):
    server_ctx, client_ctx = tls_pair
    async with ends.serve(echo, ssl=server_ctx) as server:
        async with ends.connect(ends.uri_of(server, scheme="wss"), ssl=client_ctx) as ws:
            await ws.send("secret")
            assert await wait_for(ws.recv()) == "secret"


# -- broadcast -----------------------------------------------------------------

async def test_broadcast(ends):
    """broadcast() on the server reaches every client, with and without
    compression negotiated."""
    gathering = Gathering(3)

    async with ends.serve(gathering.handler) as server:
        uri = ends.uri_of(server)
        clients = [await ends.connect(uri), await ends.connect(uri, compression=None),
                   await ends.connect(uri)]
        await gathering.broadcast_and_check(ends.broadcast, clients, "to all", b"\x00" * 1000)
        for client in clients:
            await client.close()

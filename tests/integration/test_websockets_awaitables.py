"""picows.websockets' light awaitables and inline resume, end to end.

``recv()``, ``send()`` and ``__anext__()`` return small awaitable objects
instead of coroutines, and a task waiting in ``recv()`` is resumed from
``on_ws_frame`` itself (not through ``call_soon``) when a message arrives.
These tests check what a user can observe of that, over loopback sockets:
the objects work wherever a coroutine does, an un-awaited ``send()`` sends
nothing, timeouts and cancellations lose no message, the resumed task runs
in its own context and may send, receive and close at once, and the slow
paths (fragments, closing, a full write buffer, iterables) still work.

The peer is the real ``websockets`` package. ``run_pair`` runs one
coroutine on each end, ours as the client (``role="client"``) or as the
server (``role="server"``); every test runs on both loops (conftest). TLS
where it changes the read path: picows' own TLS layer calls ``on_ws_frame``
from its decrypt loop, so a resumed task runs inside that loop.
"""
from __future__ import annotations

import asyncio
import collections.abc
import contextvars
import gc
import inspect
import os
import socket
from typing import Any, Awaitable, Callable, Optional

import pytest
import websockets.asyncio.client as their_client
import websockets.asyncio.server as their_server

import picows.websockets as ours
import picows.websockets.asyncio.client as our_client
import picows.websockets.asyncio.server as our_server

from tests.support import TIMEOUT, Net, wait_for

TCP = Net("tcp")

Side = Callable[[Any], Awaitable[Any]]

both_roles = pytest.mark.parametrize("role", ["client", "server"])


async def run_pair(role: str, ours_fn: Side, theirs_fn: Side, net: Net = TCP, *,
                   ours_kwargs: Optional[dict] = None,
                   theirs_kwargs: Optional[dict] = None) -> tuple[Any, Any]:
    """Run ``ours_fn(connection)`` on a picows.websockets connection and
    ``theirs_fn(connection)`` on the websockets connection at the other end,
    concurrently; ours is the client or the server (`role`). The client side
    closes its connection when its coroutine returns, the server side when
    its handler does (both libraries do). Returns (ours' result, theirs'),
    raising ours' exception first."""
    loop = asyncio.get_running_loop()
    results = {"ours": loop.create_future(), "theirs": loop.create_future()}

    async def run(side: str, fn: Side, ws: Any) -> None:
        try:
            results[side].set_result(await fn(ws))
        except Exception as exc:
            results[side].set_exception(exc)

    if role == "client":
        serve_fn, connect_fn = their_server.serve, our_client.connect
        server, client = ("theirs", theirs_fn, theirs_kwargs), ("ours", ours_fn, ours_kwargs)
    else:
        serve_fn, connect_fn = our_server.serve, their_client.connect
        server, client = ("ours", ours_fn, ours_kwargs), ("theirs", theirs_fn, theirs_kwargs)
    server_ssl = {"ssl": net.server_ssl} if net.tls else {}
    client_ssl = {"ssl": net.client_ssl} if net.tls else {}

    async def handler(ws: Any) -> None:
        await run(server[0], server[1], ws)

    async with serve_fn(handler, "127.0.0.1", 0, **(server[2] or {}), **server_ssl) as srv:
        port = srv.sockets[0].getsockname()[1]
        async with connect_fn(f"{net.scheme}://127.0.0.1:{port}/", **(client[2] or {}),
                              **client_ssl) as ws:
            await wait_for(run(client[0], client[1], ws))
        await asyncio.wait([results[server[0]]], timeout=TIMEOUT)
    for side in ("ours", "theirs"):
        assert results[side].done(), f"{side} side did not finish"
        results[side].exception()   # both retrieved: no "never retrieved" report
    return results["ours"].result(), results["theirs"].result()


async def fence(ws: Any) -> None:
    """Return once the peer has read everything `ws` sent before: a PING
    and its PONG (the peer's core answers in the order it reads)."""
    await wait_for(await ws.ping())


async def parked(task: asyncio.Task) -> None:
    """Let a task just created run its first step (it waits in recv())."""
    await asyncio.sleep(0)
    assert not task.done()


class FrameHook:
    """A connection that runs ``before(frame)`` / ``after(frame)`` around
    its on_ws_frame, once each per data frame, in on_ws_frame's caller's
    context (create_connection= takes a subclass: see hooked())."""

    before: Optional[Callable[[Any], None]] = None
    after: Optional[Callable[[Any], None]] = None

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        data = frame.msg_type in (1, 2)   # TEXT, BINARY
        if data and self.before is not None:
            self.before(frame)
        super().on_ws_frame(transport, frame)  # type: ignore[misc]
        if data and self.after is not None:
            self.after(frame)


class HookedClient(FrameHook, ours.ClientConnection):
    pass


class HookedServer(FrameHook, ours.ServerConnection):
    pass


def hooked(role: str) -> dict:
    return {"create_connection": HookedClient if role == "client" else HookedServer}


# -- coroutine-likes ---------------------------------------------------------------

@both_roles
async def test_awaitables_work_as_coroutines(role):
    """iscoroutine() accepts them; create_task, ensure_future, gather,
    wait_for and shield run them; the peer receives in the order sent."""
    async def ours_fn(ws):
        for aw in (ws.recv(), ws.recv(decode=False), ws.send("x"), ws.send(b"x"),
                   ws.__anext__()):
            assert asyncio.iscoroutine(aw)
            assert isinstance(aw, collections.abc.Coroutine)
            assert inspect.isawaitable(aw)
            aw.close()
        # A recv task parked before anything arrives: resumed by on_ws_frame.
        first = asyncio.create_task(ws.recv())
        await parked(first)
        assert await asyncio.create_task(ws.send("a")) is None
        assert await asyncio.gather(ws.send("b"), ws.send(b"c"), ws.send("d")) == [None] * 3
        await asyncio.ensure_future(ws.send("e"))
        await asyncio.wait_for(ws.send(b"f"), TIMEOUT)
        await asyncio.shield(ws.send("g"))
        received = [await wait_for(first)]
        received += await asyncio.gather(ws.recv())
        received.append(await asyncio.wait_for(ws.recv(), TIMEOUT))
        received.append(await asyncio.shield(ws.recv()))
        while len(received) < 7:
            received.append(await asyncio.create_task(ws.recv()))
        return received

    async def theirs_fn(ws):
        got = []
        for _ in range(7):
            message = await ws.recv()
            got.append(message)
            await ws.send(message)
        return got

    expected = ["a", "b", b"c", "d", "e", b"f", "g"]
    received, got = await run_pair(role, ours_fn, theirs_fn)
    assert got == expected
    assert received == expected


@both_roles
async def test_unawaited_send_sends_nothing(role):
    """A send() never awaited sends nothing; closing it, or a recv() never
    awaited, is harmless; the next awaited send() is the first message."""
    quiet = asyncio.Event()

    async def ours_fn(ws):
        ghosts = [ws.send("ghost"), ws.send(b"ghost"), ws.send(["gh", "ost"]),
                  ws.send("ghost", text=False)]
        stray = ws.recv()   # never awaited: takes no message
        await wait_for(quiet.wait())
        ghosts[0].close()
        ghosts[1].close()
        stray.close()
        del ghosts, stray
        gc.collect()
        await ws.send("real")
        assert await wait_for(ws.recv()) == "seen real"
        await ws.send("end")
        return await wait_for(ws.recv())

    async def theirs_fn(ws):
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.15)
        quiet.set()
        got = [await ws.recv()]
        await ws.send(f"seen {got[0]}")
        got.append(await ws.recv())
        await ws.send("bye")
        return got

    last, got = await run_pair(role, ours_fn, theirs_fn)
    assert got == ["real", "end"]
    assert last == "bye"


async def test_an_awaitable_is_not_reused():
    """As with websockets' coroutines: awaiting a send() or recv() again
    (or after close()) raises RuntimeError and sends nothing."""
    async def ours_fn(ws):
        send = ws.send("once")
        await send
        closed = ws.send("closed")
        closed.close()
        recv = ws.recv()
        assert await wait_for(recv) == "once"
        errors = []
        for aw in (send, closed, recv):
            try:
                await asyncio.wait_for(aw, 0.1)
            except (RuntimeError, asyncio.TimeoutError) as exc:
                errors.append(type(exc))
            else:
                errors.append(None)
        await ws.send("end")
        # The echo: the peer is done before the connection closes.
        assert await wait_for(ws.recv()) == "end"
        return errors

    async def theirs_fn(ws):
        got = []
        async for message in ws:
            got.append(message)
            await ws.send(message)
            if message == "end":
                return got

    errors, got = await run_pair("client", ours_fn, theirs_fn)
    assert got == ["once", "end"]
    assert errors == [RuntimeError] * 3


# -- timeouts and cancellation ---------------------------------------------------------

# Gaps between the peer's messages, around the receiver's timeout (20 ms):
# some arrive as a timeout fires, some in bursts (0).
GAPS = [0.0, 0.015, 0.02, 0.025, 0.0, 0.0, 0.045, 0.005, 0.019, 0.021, 0.0, 0.03]
ROUNDS = 40


@both_roles
async def test_timeouts_lose_no_message(role):
    """recv() under wait_for / asyncio.timeout timing out again and again
    while messages come at intervals: every message, once, in order."""
    async def ours_fn(ws):
        received: list = []
        timeouts = 0
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while len(received) < ROUNDS:
            assert asyncio.get_running_loop().time() < deadline, (received, timeouts)
            try:
                if timeouts % 2 and hasattr(asyncio, "timeout"):   # Python 3.11+
                    async with asyncio.timeout(0.02):
                        received.append(await ws.recv())
                else:
                    received.append(await asyncio.wait_for(ws.recv(), 0.02))
            except asyncio.TimeoutError:
                timeouts += 1
        await ws.send("done")
        return received, timeouts

    async def theirs_fn(ws):
        for i in range(ROUNDS):
            await asyncio.sleep(GAPS[i % len(GAPS)])
            await ws.send(str(i) if i % 3 else str(i).encode())
        assert await ws.recv() == "done"

    (received, timeouts), _ = await run_pair(role, ours_fn, theirs_fn)
    assert received == [str(i) if i % 3 else str(i).encode() for i in range(ROUNDS)]
    assert timeouts >= 5


@both_roles
async def test_cancelled_waiting_recv_loses_nothing(role):
    async def ours_fn(ws):
        for _ in range(3):
            task = asyncio.create_task(ws.recv())
            await parked(task)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        await ws.send("go")
        return [await wait_for(ws.recv()) for _ in range(2)]

    async def theirs_fn(ws):
        assert await ws.recv() == "go"
        await ws.send("m0")
        await ws.send("m1")
        await ws.wait_closed()

    received, _ = await run_pair(role, ours_fn, theirs_fn)
    assert received == ["m0", "m1"]


@both_roles
@pytest.mark.parametrize("when", ["before-frame", "after-frame", "after-frame-loop-path"])
async def test_recv_cancelled_around_its_frame(role, when):
    """The recv() task is cancelled from on_ws_frame's caller, right before
    or right after the frame of its message is processed.

    - before: the message stays buffered for the next recv().
    - after, inline resume: the task got the message already (cancel() is
      too late and returns False).
    - after, the loop's way (a second callback on the waiter, so no inline
      resume): the message was handed over but the task had not run; it
      goes back to the head of the buffer.
    """
    outcome: dict = {}

    async def ours_fn(ws):
        task = asyncio.create_task(ws.recv())
        await parked(task)
        if when == "after-frame-loop-path":
            # Two callbacks on the future: _hand_over resumes the loop's way.
            ws._waiter.add_done_callback(lambda fut: None)

        def cancel(frame):
            ws.before = ws.after = None   # the first message's frame only
            outcome["cancel() returned"] = task.cancel()
            outcome["task done"] = task.done()

        if when == "before-frame":
            ws.before = cancel
        else:
            ws.after = cancel
        await ws.send("go")
        results = await asyncio.gather(task, return_exceptions=True)
        outcome["task"] = "cancelled" if isinstance(results[0], asyncio.CancelledError) \
            else results[0]
        return [await wait_for(ws.recv()) for _ in range(2 if outcome["task"] == "m0" else 3)]

    async def theirs_fn(ws):
        assert await ws.recv() == "go"
        for message in ("m0", "m1", "m2"):
            await ws.send(message)
        await ws.wait_closed()

    received, _ = await run_pair(role, ours_fn, theirs_fn, ours_kwargs=hooked(role))
    if when == "after-frame":
        assert outcome == {"cancel() returned": False, "task done": True, "task": "m0"}
        assert received == ["m1", "m2"]
    else:
        assert outcome == {"cancel() returned": True, "task done": False,
                           "task": "cancelled"}
        assert received == ["m0", "m1", "m2"]


@both_roles
async def test_cancel_storm_loses_nothing(role):
    """recv() tasks cancelled at many points (before they start, while
    they wait, as messages arrive in bursts): what is received, by the
    tasks that finished and by those after, is what was sent."""
    count = 300

    async def ours_fn(ws):
        loop = asyncio.get_running_loop()
        received: list = []
        cancelled = 0
        i = 0
        deadline = loop.time() + TIMEOUT
        while len(received) < count:
            assert loop.time() < deadline, (len(received), cancelled)
            task = asyncio.create_task(ws.recv())
            mode = i % 7
            i += 1
            if mode == 1:
                task.cancel()                 # before its first step
            elif mode == 2:
                loop.call_soon(task.cancel)   # after its first step
            elif mode == 3:
                # A turn of the loop later: maybe just before a frame's
                # read callback, in the same batch of callbacks.
                loop.call_soon(loop.call_soon, task.cancel)
            elif mode >= 4:
                for _ in range(mode - 3):
                    await asyncio.sleep(0)
                task.cancel()
            try:
                received.append(await task)
            except asyncio.CancelledError:
                cancelled += 1
        await ws.send("done")
        return received, cancelled

    async def theirs_fn(ws):
        burst = 1
        i = 0
        while i < count:
            for _ in range(burst):
                if i < count:
                    await ws.send(str(i))
                    i += 1
            burst = burst % 7 + 1
            await asyncio.sleep(0.001 if burst % 2 else 0)
        assert await ws.recv() == "done"

    (received, cancelled), _ = await run_pair(role, ours_fn, theirs_fn)
    assert received == [str(i) for i in range(count)]
    assert cancelled > 0


# -- the resumed task ----------------------------------------------------------------

async def test_contextvars_of_the_resumed_task():
    """A task resumed from on_ws_frame runs in its own context: it sees what
    it set before recv(), not on_ws_frame's caller's values, and what it sets
    after does not leak into the caller's context or into another task."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list = []
    in_caller: list = []
    inline: list = []

    async def theirs(ws):
        assert await ws.recv() == "go"
        for i in range(3):
            await ws.send(f"m{i}")
        await ws.wait_closed()

    async def reader(ws, name):
        task = asyncio.current_task()
        var.set(name)
        for i in range(3):
            message = await ws.recv()
            seen.append((name, message, var.get(), asyncio.current_task() is task))
            var.set(f"{name} after m{i}")

    async with their_server.serve(theirs, "127.0.0.1", 0) as server:
        uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        var.set("main")
        async with our_client.connect(uri, create_connection=HookedClient) as a, \
                our_client.connect(uri, create_connection=HookedClient) as b:
            tokens: list = []

            def before(frame):
                # The caller's own value while the frame is processed.
                in_caller.append(var.get())
                tokens.append(var.set("on_ws_frame's caller"))
                inline.append(len(seen))

            def after(frame):
                in_caller.append(var.get())
                var.reset(tokens.pop())
                inline[-1] = len(seen) - inline[-1]

            a.before = b.before = before
            a.after = b.after = after
            tasks = [asyncio.create_task(reader(a, "A")), asyncio.create_task(reader(b, "B"))]
            for task in tasks:
                await parked(task)
            await a.send("go")
            await b.send("go")
            await wait_for(asyncio.gather(*tasks))
            assert var.get() == "main"

    for name in ("A", "B"):
        assert [s for s in seen if s[0] == name] == [
            (name, "m0", name, True), (name, "m1", f"{name} after m0", True),
            (name, "m2", f"{name} after m1", True)]
    # The caller's value before and after each frame: its own, never a task's.
    assert set(in_caller[0::2]) == {"main"}
    assert set(in_caller[1::2]) == {"on_ws_frame's caller"}
    # Each message was taken by its task during its own on_ws_frame.
    assert inline == [1] * 6


@both_roles
async def test_resumed_task_sends_receives_and_closes(role, net):
    """An echo that closes after N messages, all sent at once by the peer:
    each resumed recv() sends, receives again, and the last one closes,
    from on_ws_frame (and over TLS from the decrypt loop)."""
    count = 50
    messages = [f"t{i}" if i % 2 else os.urandom(i * 997) for i in range(count)]
    messages[25] = "x" * 100_000   # several TLS records

    async def ours_fn(ws):
        for _ in range(count):
            await ws.send(await ws.recv())
        await ws.close()
        return ws.close_code

    async def theirs_fn(ws):
        for message in messages:
            await ws.send(message)
        echoes = [message async for message in ws]   # ends on a normal close
        return echoes, ws.close_code

    close_code, (echoes, their_close_code) = await run_pair(role, ours_fn, theirs_fn, net)
    assert echoes == messages
    assert close_code == their_close_code == 1000


@pytest.mark.parametrize("clients", ["picows", "websockets"])
async def test_cross_connection_relay(clients):
    """A picows.websockets server relays between two connections (each
    handler receives on its connection, sends on the other) while two
    clients in the same process talk through it: no deadlock, no
    RuntimeError from entering a task, everything in order."""
    count = 200
    conns: dict = {}
    both = asyncio.Event()
    failures: list = []

    async def relay(ws):
        name = ws.request.path.strip("/")
        conns[name] = ws
        if len(conns) == 2:
            both.set()
        try:
            await wait_for(both.wait())
            other = conns["b" if name == "a" else "a"]
            async for message in ws:
                await other.send(message)
        except Exception as exc:
            failures.append(exc)
            raise

    connect = our_client.connect if clients == "picows" else their_client.connect

    async def asker(ws):
        await asyncio.gather(*[ws.send(f"q{i}") for i in range(count)])
        return [await wait_for(ws.recv()) for _ in range(count)]

    async def answerer(ws):
        for _ in range(count):
            question = await wait_for(ws.recv())
            await ws.send(question.replace("q", "a", 1))

    async with our_server.serve(relay, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/a") as a, \
                connect(f"ws://127.0.0.1:{port}/b") as b:
            answers, _ = await wait_for(asyncio.gather(asker(a), answerer(b)))
        assert a.close_code == b.close_code == 1000
    assert answers == [f"a{i}" for i in range(count)]
    assert not failures


def _stop_from_a_resumed_handler(new_loop: Callable[[], asyncio.AbstractEventLoop]
                                 ) -> tuple[str, list]:
    """On a loop of its own (run in a thread): a picows.websockets handler
    raises SystemExit right after its recv(). Returns how the loop's run
    ended and the messages that reached the loop's exception handler."""
    loop = new_loop()
    asyncio.set_event_loop(loop)
    reported: list = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context["message"]))

    async def main() -> str:
        async def handler(ws):
            await ws.recv()
            raise SystemExit(7)

        async with our_server.serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with their_client.connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send("stop")
                # The loop stops before this returns, unless the connection
                # was closed instead.
                await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
                return f"loop kept running; the peer saw close code {ws.close_code}"

    try:
        outcome = loop.run_until_complete(main())
    except SystemExit as exc:
        outcome = f"SystemExit({exc.code}) out of the loop"
    finally:
        # Before the clean-up. The handler's task ends with the SystemExit,
        # which nobody retrieves: reported when collected, whichever way the
        # task was resumed; not what this test is about.
        reported = [m for m in reported if m != "Task exception was never retrieved"]
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        loop.close()
    return outcome, reported


async def test_system_exit_in_a_resumed_task_stops_the_loop():
    """SystemExit (KeyboardInterrupt alike) raised by a task resumed from
    on_ws_frame leaves the loop's run, as it does from a task the loop
    resumes, rather than being taken for a transport error (uvloop's read
    callback catches BaseException)."""
    running = asyncio.get_running_loop()
    outcome, reported = await asyncio.to_thread(_stop_from_a_resumed_handler,
                                                type(running))
    assert outcome == "SystemExit(7) out of the loop"
    assert reported == []


# -- closing -------------------------------------------------------------------------

@both_roles
@pytest.mark.parametrize("how", ["1000", "1001", "4000", "abort"])
async def test_async_for_and_recv_after_close(role, how):
    """async for ends on a normal closure and raises ConnectionClosedError
    otherwise; then recv() and send() raise the same ConnectionClosed."""
    normal = how in ("1000", "1001")

    async def ours_fn(ws):
        received = []
        try:
            async for message in ws:
                received.append(message)
                if message == "2":
                    await ws.send("got 2")
        except ours.ConnectionClosedError:
            raised: Any = ours.ConnectionClosedError
        else:
            raised = None
        closed = []
        for aw in (ws.recv(), ws.recv(decode=True), ws.send("late"), ws.__anext__()):
            with pytest.raises((ours.ConnectionClosed, StopAsyncIteration)) as info:
                await wait_for(aw)
            closed.append(info.type)
        return received, raised, closed, ws.close_code

    async def theirs_fn(ws):
        for i in range(3):
            await ws.send(str(i))
        assert await ws.recv() == "got 2"
        if how == "abort":
            ws.transport.abort()
        else:
            await ws.close(int(how), "bye")

    (received, raised, closed, code), _ = await run_pair(role, ours_fn, theirs_fn)
    assert received == ["0", "1", "2"]
    if normal:
        assert raised is None
        assert closed == [ours.ConnectionClosedOK, ours.ConnectionClosedOK,
                          ours.ConnectionClosedOK, StopAsyncIteration]
        assert code == int(how)
    else:
        assert raised is ours.ConnectionClosedError
        assert closed == [ours.ConnectionClosedError] * 4
        assert code == (1006 if how == "abort" else 4000)


@both_roles
async def test_async_for_over_messages_buffered_before_the_close(role):
    async def ours_fn(ws):
        await wait_for(ws.wait_closed())
        return [message async for message in ws]

    async def theirs_fn(ws):
        for message in ("one", b"two", ["thr", "ee"]):
            await ws.send(message)
        await ws.close()

    received, _ = await run_pair(role, ours_fn, theirs_fn)
    assert received == ["one", b"two", "three"]


# -- the slow paths -------------------------------------------------------------------

@both_roles
async def test_fragmented_messages_and_recv_streaming(role):
    buffered = asyncio.Event()

    async def ours_fn(ws):
        got = {}
        # recv() waiting when the first fragment arrives.
        task = asyncio.create_task(ws.recv())
        await parked(task)
        await ws.send("waiting")
        got["waiting"] = await wait_for(task)
        # recv() of a fragmented message buffered whole.
        await ws.send("buffered")
        await wait_for(buffered.wait())
        got["buffered"] = await ws.recv()
        # recv_streaming, fragment by fragment as they come.
        await ws.send("streaming")
        got["streaming"] = [chunk async for chunk in ws.recv_streaming()]
        # async for (__anext__) and decode=False over fragments.
        await ws.send("anext")
        got["anext"] = await wait_for(ws.__anext__())
        await ws.send("undecoded")
        got["undecoded"] = await wait_for(ws.recv(decode=False))
        # And a whole message after all that, handed over.
        await ws.send("whole")
        got["whole"] = await wait_for(ws.recv())
        return got

    async def theirs_fn(ws):
        async def slowly():
            for part in ("x", "y", "z"):
                yield part
                await asyncio.sleep(0.01)

        replies = {"waiting": ["frag", "ment", "ed"], "buffered": [b"a", b"b", b"c"],
                   "anext": ["p", "q"], "undecoded": ["é", "è"], "whole": "w"}
        async for command in ws:
            if command == "streaming":
                await ws.send(slowly())
            else:
                await ws.send(replies[command])
            if command == "buffered":
                await fence(ws)
                buffered.set()

    got, _ = await run_pair(role, ours_fn, theirs_fn)
    # The last, empty frame of the streamed message is a chunk too, as with websockets.
    assert got == {"waiting": "fragmented", "buffered": b"abc",
                   "streaming": ["x", "y", "z", ""],
                   "anext": "pq", "undecoded": "éè".encode(), "whole": "w"}


@both_roles
async def test_send_iterables(role):
    """Iterables and async iterables go out as one fragmented message each;
    a send() started during one waits for its end (not interleaved)."""
    gate = asyncio.Event()

    async def ours_fn(ws):
        await ws.send(["frag", "ment", "ed"])
        await ws.send(iter([b"a", b"b", b"c"]))

        async def agen():
            yield "x"
            await gate.wait()
            yield "y"

        async def open_gate():
            await asyncio.sleep(0)
            gate.set()

        await wait_for(asyncio.gather(ws.send(agen()), ws.send("after"), open_gate()))
        await ws.send([])   # nothing
        await ws.send("end")

    async def theirs_fn(ws):
        got = []
        while not got or got[-1] != ["end"]:
            got.append([chunk async for chunk in ws.recv_streaming()])
        return got

    _, got = await run_pair(role, ours_fn, theirs_fn)
    assert got == [["frag", "ment", "ed", ""], [b"a", b"b", b"c", b""], ["x", "y", ""],
                   ["after"], ["end"]]


@both_roles
async def test_send_waits_while_the_write_buffer_is_full(role):
    """With a small write_limit and a peer that stops reading, send()
    waits (the task is not done); once the peer reads again it completes
    and every byte arrives."""
    count, size = 48, 65536
    paused = asyncio.Event()
    resume = asyncio.Event()

    async def ours_fn(ws):
        ws.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        await wait_for(paused.wait())

        async def send_all():
            for i in range(count):
                await ws.send(i.to_bytes(4, "big") * (size // 4))

        task = asyncio.create_task(send_all())
        done, _ = await asyncio.wait([task], timeout=0.3)
        blocked = not done
        resume.set()
        await wait_for(task)
        return blocked

    async def theirs_fn(ws):
        ws.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        ws.transport.pause_reading()
        paused.set()
        await resume.wait()
        ws.transport.resume_reading()
        return [await ws.recv() for _ in range(count)]

    blocked, got = await run_pair(role, ours_fn, theirs_fn,
                                  ours_kwargs={"write_limit": 4096, "compression": None},
                                  theirs_kwargs={"compression": None})
    assert blocked, "the peer did not read, yet every send() completed"
    assert got == [i.to_bytes(4, "big") * (size // 4) for i in range(count)]


@both_roles
async def test_recv_decode(role):
    """decode=None/True/False for TEXT and BINARY, on each receive path:
    handed over to a waiting recv(), buffered, fragmented."""
    buffered = asyncio.Event()
    cases = [(path, kind, decode) for path in ("waiting", "buffered", "fragmented")
             for kind in ("text", "binary") for decode in (None, True, False)]

    async def ours_fn(ws):
        got = []
        for path, kind, decode in cases:
            command = f"{path} {kind}"
            if path == "waiting":
                task = asyncio.create_task(ws.recv(decode=decode))
                await parked(task)
                await ws.send(command)
                got.append(await wait_for(task))
            else:
                buffered.clear()
                await ws.send(command)
                await wait_for(buffered.wait())
                got.append(await ws.recv(decode=decode))
        return got

    async def theirs_fn(ws):
        async for command in ws:
            path, kind = command.split()
            message = "é" if kind == "text" else "é".encode()
            await ws.send([message[:0], message] if path == "fragmented" else message)
            if path != "waiting":
                await fence(ws)
                buffered.set()

    got, _ = await run_pair(role, ours_fn, theirs_fn)
    expected = []
    for _, kind, decode in cases:
        if decode is None:
            expected.append("é" if kind == "text" else "é".encode())
        else:
            expected.append("é" if decode else "é".encode())
    assert got == expected
    assert [type(g) for g in got] == [type(e) for e in expected]

"""Echo servers and clients, one pair per contender, run in child processes.

Every contender has the same library on both ends. A server echoes every
message back; a client sends one message of ``size`` bytes, waits for the
whole echo, and sends the next one. The measurement is controlled by two
timers on the client's loop (end of warm-up, end of measurement), so the hot
path does no clock reads of its own and every contender pays the same.

Contenders:

raw          asyncio.Protocol, no framing (the ceiling)
picows       this repository's picows
picows-pypi  the same code as ``picows``, run by another interpreter whose
             environment has the PyPI release installed (reference only)
websockets   websockets.asyncio (compression off, no size limit)
picows.websockets
             the same echo code as ``websockets``, with the websockets API of
             this repository's picows (``picows.websockets``) on both ends
picows-pypi.websockets
             the same, with the PyPI release's ``picows.websockets`` (run by
             the ``--orig-python`` interpreter; reference only)
aiohttp      aiohttp client/server websockets (compression off, no size limit)

This module is imported only by ``echo.py`` in a child process, after the
child has chosen its event loop; it imports a library only when asked for it.
"""
from __future__ import annotations

import asyncio
import os
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------
# Measurement window shared by all clients
# ---------------------------------------------------------------------------

class Window:
    """Counts round trips and marks the start and end of the measurement.

    ``count`` is bumped by the client's hot path. The timers take a snapshot
    of (count, time) at the end of the warm-up and at the end of the
    measurement; ``stop`` tells the client not to send the next message.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, warmup: float, duration: float,
                 server_pid: int | None = None):
        self.loop = loop
        self.count = 0
        self.stop = False
        self.t0 = self.t1 = 0.0
        self.n0 = self.n1 = 0
        self.server_pid = server_pid
        self.cpu0 = self.cpu1 = (0, 0, 0)
        self.done = loop.create_future()
        loop.call_later(warmup, self._begin)
        loop.call_later(warmup + duration, self._end)

    def _cpu(self) -> tuple:
        """(client ns, server ns, whole machine busy ns) on CPU so far."""
        return (_run_time_ns("self"),
                _run_time_ns(self.server_pid) if self.server_pid else 0,
                _machine_busy_ns())

    def _begin(self) -> None:
        self.n0 = self.count
        self.t0 = time.perf_counter()
        self.cpu0 = self._cpu()

    def _end(self) -> None:
        self.n1 = self.count
        self.t1 = time.perf_counter()
        self.cpu1 = self._cpu()
        self.stop = True

    def finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def result(self, size: int) -> dict:
        elapsed = self.t1 - self.t0
        n = self.n1 - self.n0
        rps = n / elapsed if elapsed > 0 else 0.0
        return {
            "round_trips": n,
            "elapsed": elapsed,
            "rps": rps,
            "mbps": rps * size / 1e6,
            "total_round_trips": self.count,
            # CPU time per round trip in microseconds, from /proc/PID/schedstat.
            "client_cpu_us": (self.cpu1[0] - self.cpu0[0]) / 1e3 / n if n else None,
            "server_cpu_us": ((self.cpu1[1] - self.cpu0[1]) / 1e3 / n
                              if n and self.server_pid else None),
            # CPUs' worth of time used by anything but this client and the
            # server during the measurement: should be ~0 on an idle machine.
            "other_cpus": ((self.cpu1[2] - self.cpu0[2] - (self.cpu1[0] - self.cpu0[0])
                            - (self.cpu1[1] - self.cpu0[1])) / 1e9 / elapsed
                           if elapsed > 0 and self.server_pid and self.cpu1[2] else None),
        }


def _machine_busy_ns() -> int:
    """Non-idle time of all CPUs so far, in ns, from /proc/stat (0 if unknown)."""
    try:
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        # guest time is already counted in user; leave out guest fields.
        busy = sum(vals[:8]) - idle
        return busy * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0


def _run_time_ns(pid) -> int:
    """Time the main thread of ``pid`` has run, in ns (0 when unknown)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


# ---------------------------------------------------------------------------
# raw asyncio.Protocol
# ---------------------------------------------------------------------------

class RawServerProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class RawClientProtocol(asyncio.Protocol):
    def __init__(self, message: bytes, window: Window):
        self.message = message
        self.size = len(message)
        self.window = window
        self.received = 0
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.message)

    def data_received(self, data):
        self.received += len(data)
        if self.received >= self.size:
            self.received -= self.size
            window = self.window
            window.count += 1
            if window.stop:
                window.finish()
            else:
                self.transport.write(self.message)

    def connection_lost(self, exc):
        self.window.finish()


async def raw_server(host, port, ssl_context):
    loop = asyncio.get_running_loop()
    return await loop.create_server(RawServerProtocol, host, port, ssl=ssl_context,
                                    backlog=4096)


async def raw_client(host, port, ssl_context, message, window):
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(
        lambda: RawClientProtocol(message, window), host, port, ssl=ssl_context)
    await window.done
    transport.close()


# ---------------------------------------------------------------------------
# picows (ours, or the PyPI release in another interpreter)
# ---------------------------------------------------------------------------

def import_picows(lib: str):
    """Import picows for ``lib`` and make sure it is the one we asked for."""
    if lib == "picows":
        try:
            import picows
        except ImportError:
            # Built in place (python setup.py build_ext --inplace) but not
            # installed: sys.path[0] is benchmarks/, so add the repo root.
            sys.path.insert(0, REPO_ROOT)
            import picows
        return picows
    # picows-pypi: must come from the interpreter's own site-packages, never
    # from this repository.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != REPO_ROOT]
    import picows
    path = os.path.abspath(picows.__file__)
    if path.startswith(REPO_ROOT + os.sep):
        raise RuntimeError(f"picows-pypi resolved to this repository ({path}); "
                           "pass --orig-python with a separate venv")
    return picows


def picows_classes(picows):
    WSListener = picows.WSListener
    BINARY = picows.WSMsgType.BINARY
    CLOSE = picows.WSMsgType.CLOSE

    class ServerListener(WSListener):
        def on_ws_frame(self, transport, frame):
            if frame.msg_type == CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
                return
            transport.send(frame.msg_type, frame.get_payload_as_memoryview())

    class ClientListener(WSListener):
        def __init__(self, message, window):
            self.message = message
            self.size = len(message)
            self.window = window
            self.received = 0

        def on_ws_connected(self, transport):
            transport.send(BINARY, self.message)

        def on_ws_frame(self, transport, frame):
            self.received += frame.payload_size
            if self.received >= self.size:
                self.received -= self.size
                window = self.window
                window.count += 1
                if window.stop:
                    window.finish()
                else:
                    transport.send(BINARY, self.message)

        def on_ws_disconnected(self, transport):
            self.window.finish()

    class ClientListenerNoPayloadSize(ClientListener):
        # For a picows whose WSFrame.payload_size is Cython-only.
        def on_ws_frame(self, transport, frame):
            self.received += len(frame.get_payload_as_memoryview())
            if self.received >= self.size:
                self.received -= self.size
                window = self.window
                window.count += 1
                if window.stop:
                    window.finish()
                else:
                    transport.send(BINARY, self.message)

    return ServerListener, ClientListener, ClientListenerNoPayloadSize


def _has_python_payload_size(picows) -> bool:
    # WSFrame cannot be built from Python; look at the class attribute.
    return "payload_size" in dir(picows.WSFrame)


async def picows_server(lib, host, port, ssl_context):
    picows = import_picows(lib)
    ServerListener, _, _ = picows_classes(picows)

    def factory(*_request):
        return ServerListener()

    return await picows.ws_create_server(factory, host, port, ssl=ssl_context, backlog=4096)


async def picows_client(lib, host, port, ssl_context, message, window):
    picows = import_picows(lib)
    _, ClientListener, ClientListenerNoPayloadSize = picows_classes(picows)
    cls = ClientListener if _has_python_payload_size(picows) else ClientListenerNoPayloadSize
    scheme = "wss" if ssl_context else "ws"
    transport, _ = await picows.ws_connect(
        lambda: cls(message, window), f"{scheme}://{host}:{port}/", ssl_context=ssl_context)
    await window.done
    transport.disconnect()


# ---------------------------------------------------------------------------
# websockets (asyncio API)
# ---------------------------------------------------------------------------

def websockets_api(lib: str):
    """The (connect, serve) of ``lib``: websockets, or the same API of
    picows.websockets."""
    if lib in ("picows.websockets", "picows-pypi.websockets"):
        import_picows("picows" if lib == "picows.websockets" else "picows-pypi")
        from picows.websockets import connect, serve
    else:
        from websockets.asyncio.client import connect
        from websockets.asyncio.server import serve
    return connect, serve


async def websockets_server(host, port, ssl_context, lib="websockets"):
    _, serve = websockets_api(lib)

    async def echo(ws):
        async for msg in ws:
            await ws.send(msg)

    return await serve(echo, host, port, compression=None, max_size=None,
                       ssl=ssl_context, backlog=4096)


async def websockets_client(host, port, ssl_context, message, window, lib="websockets"):
    connect, _ = websockets_api(lib)

    scheme = "wss" if ssl_context else "ws"
    size = len(message)
    async with connect(f"{scheme}://{host}:{port}/", compression=None, max_size=None,
                       ssl=ssl_context) as ws:
        send, recv = ws.send, ws.recv
        while True:
            await send(message)
            received = 0
            while received < size:
                received += len(await recv())
            window.count += 1
            if window.stop:
                break
    window.finish()


# ---------------------------------------------------------------------------
# aiohttp
# ---------------------------------------------------------------------------

async def aiohttp_server(host, port, ssl_context, compress: bool = False):
    from aiohttp import web

    async def handler(request):
        ws = web.WebSocketResponse(compress=compress, max_msg_size=0)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == web.WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
            elif msg.type == web.WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, backlog=4096)
    await site.start()
    return runner


def _aiohttp_port(runner) -> int:
    return runner.addresses[0][1]


async def aiohttp_client(host, port, ssl_context, message, window):
    import aiohttp

    scheme = "wss" if ssl_context else "ws"
    size = len(message)
    extra = {"ssl": ssl_context} if ssl_context else {}
    async with aiohttp.ClientSession() as session, session.ws_connect(
            f"{scheme}://{host}:{port}/", compress=0, max_msg_size=0, **extra) as ws:
        send, recv = ws.send_bytes, ws.receive
        while True:
            await send(message)
            received = 0
            while received < size:
                msg = await recv()
                if msg.type != aiohttp.WSMsgType.BINARY:
                    raise RuntimeError(f"aiohttp client got {msg.type}")
                received += len(msg.data)
            window.count += 1
            if window.stop:
                break
    window.finish()


# ---------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------

LIBS = ("raw", "picows", "picows-pypi", "websockets", "picows.websockets",
        "picows-pypi.websockets", "aiohttp")


async def start_server(lib, host, port, ssl_context):
    """Start a server; return (server object, bound port)."""
    if lib == "raw":
        server = await raw_server(host, port, ssl_context)
    elif lib in ("picows", "picows-pypi"):
        server = await picows_server(lib, host, port, ssl_context)
    elif lib in ("websockets", "picows.websockets", "picows-pypi.websockets"):
        server = await websockets_server(host, port, ssl_context, lib)
    elif lib == "aiohttp":
        runner = await aiohttp_server(host, port, ssl_context)
        return runner, _aiohttp_port(runner)
    else:
        raise ValueError(f"unknown lib {lib!r}")
    return server, server.sockets[0].getsockname()[1]


async def run_client(lib, host, port, ssl_context, message, window):
    if lib == "raw":
        await raw_client(host, port, ssl_context, message, window)
    elif lib in ("picows", "picows-pypi"):
        await picows_client(lib, host, port, ssl_context, message, window)
    elif lib in ("websockets", "picows.websockets", "picows-pypi.websockets"):
        await websockets_client(host, port, ssl_context, message, window, lib)
    elif lib == "aiohttp":
        await aiohttp_client(host, port, ssl_context, message, window)
    else:
        raise ValueError(f"unknown lib {lib!r}")


def library_version(lib) -> str:
    try:
        if lib == "raw":
            return "asyncio"
        if lib in ("picows", "picows-pypi", "picows.websockets", "picows-pypi.websockets"):
            picows = import_picows({"picows.websockets": "picows",
                                    "picows-pypi.websockets": "picows-pypi"}.get(lib, lib))
            where = os.path.dirname(os.path.dirname(os.path.abspath(picows.__file__)))
            return f"{getattr(picows, '__version__', '?')} from {where}"

        mod = __import__(lib)
        return getattr(mod, "__version__", "?")
    except Exception as exc:  # noqa: BLE001 - only for the report
        return f"? ({exc})"

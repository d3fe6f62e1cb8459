"""picows.websockets with connection.py uncompiled.

connection.py is compiled by Cython (with connection.pxd) in a build, and
is meant to run as plain Python as it is: ``_COMPILED`` picks the pure
Python branches of ``_Recv`` / ``_Send``. This test copies the installed
``picows`` package to a temporary directory, removes the compiled
``connection`` module from the copy, and runs a short client/server script
against the copy in a subprocess, on both loops.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

picows = pytest.importorskip("picows")

SCRIPT = textwrap.dedent('''
    import asyncio
    import json
    import os
    import sys

    if os.environ.get("NO_CYTHON"):
        sys.modules["cython"] = None    # import cython raises ImportError

    import picows.websockets as ours
    import picows.websockets.asyncio.connection as connection

    report = {"module": connection.__file__}

    async def main():
        async def echo(ws):
            async for message in ws:
                await ws.send(message)

        async with ours.serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with ours.connect(f"ws://127.0.0.1:{port}/") as ws:
                # Echo, text and bytes, and decode=.
                echoed = []
                for message in ["text", b"bytes", "\\u00e9"]:
                    await ws.send(message)
                    echoed.append(repr(await ws.recv()))
                await ws.send("\\u00e9")
                echoed.append(repr(await ws.recv(decode=False)))
                await ws.send(b"b")
                echoed.append(repr(await ws.recv(decode=True)))
                report["echo"] = echoed

                # Coroutine-likes: create_task of a waiting recv, gather of sends.
                recv, send = ws.recv(), ws.send("never")
                report["iscoroutine"] = [asyncio.iscoroutine(recv), asyncio.iscoroutine(send)]
                recv.close()
                send.close()
                task = asyncio.create_task(ws.recv())
                await asyncio.sleep(0)
                await asyncio.gather(ws.send("t1"), ws.send("t2"))
                report["task"] = [await task, await ws.recv()]

                # A cancelled recv loses nothing.
                task = asyncio.create_task(ws.recv())
                await asyncio.sleep(0)
                task.cancel()
                try:
                    await task
                    report["cancelled"] = "not cancelled"
                except asyncio.CancelledError:
                    await ws.send("after cancel")
                    report["cancelled"] = await ws.recv()

                # wait_for timing out while echoes come at intervals: no loss.
                async def sender():
                    for i in range(20):
                        await asyncio.sleep((0.0, 0.02, 0.03, 0.0, 0.015)[i % 5])
                        await ws.send(str(i))

                sending = asyncio.create_task(sender())
                received, timeouts = [], 0
                while len(received) < 20:
                    try:
                        received.append(await asyncio.wait_for(ws.recv(), 0.02))
                    except asyncio.TimeoutError:
                        timeouts += 1
                await sending
                report["wait_for"] = [received == [str(i) for i in range(20)], timeouts > 0]
            report["close_code"] = ws.close_code

    if sys.argv[1] == "uvloop":
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())
    print(json.dumps(report))
''')


@pytest.fixture(scope="module")
def pure_copy(tmp_path_factory) -> Path:
    """A copy of the picows package without the compiled connection module."""
    source = Path(picows.__file__).parent
    root = tmp_path_factory.mktemp("pure")
    shutil.copytree(source, root / "picows",
                    ignore=shutil.ignore_patterns("__pycache__", "*.html", "build"))
    asyncio_dir = root / "picows" / "websockets" / "asyncio"
    for compiled in list(asyncio_dir.glob("connection*.so")) + \
            list(asyncio_dir.glob("connection*.pyd")) + [asyncio_dir / "connection.c"]:
        if compiled.exists():
            compiled.unlink()
    assert (asyncio_dir / "connection.py").exists()
    (root / "run_pure.py").write_text(SCRIPT)
    return root


@pytest.mark.parametrize("cython_installed", [True, False], ids=["cython", "no-cython"])
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_uncompiled_connection_module(pure_copy, loop, cython_installed):
    """Also where Cython is not installed: connection.py then takes its
    decorators from _cython_stub."""
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    env = dict(os.environ, PYTHONPATH=str(pure_copy))
    env.pop("NO_CYTHON", None)
    if not cython_installed:
        env["NO_CYTHON"] = "1"
    proc = subprocess.run([sys.executable, str(pure_copy / "run_pure.py"), loop],
                          cwd=pure_copy, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    module = report.pop("module")
    assert module == str(pure_copy / "picows" / "websockets" / "asyncio" / "connection.py")
    assert report == {
        "echo": ["'text'", "b'bytes'", "'é'", repr("é".encode()), "'b'"],
        "iscoroutine": [True, True],
        "task": ["t1", "t2"],
        "cancelled": "after cancel",
        "wait_for": [True, True],
        "close_code": 1000,
    }

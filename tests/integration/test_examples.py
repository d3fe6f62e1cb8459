"""The examples: the README's echo_server.py / echo_client.py pair as real
processes, and the Cython listener example built with Cython against the
picows package in this repository."""
from __future__ import annotations

import importlib
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support import serve, wait_for


REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
PROCESS_TIMEOUT = 30


def _env(*extra_paths) -> dict:
    import picows
    env = dict(os.environ)
    # The picows this test process imported: built in place in the
    # repository, or installed (tox), where the repository's picows/ holds
    # only sources and must not shadow it.
    paths = [str(p) for p in extra_paths] + [str(Path(picows.__file__).parents[1])]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _readline(stream, timeout: float) -> str:
    """One line from a pipe, or "" if none comes within timeout."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


@pytest.fixture(scope="session")
def cython_example(tmp_path_factory):
    """Build examples/echo_client_cython.pyx in a temporary directory; import it."""
    build_dir = tmp_path_factory.mktemp("cython_example")
    for name in ("echo_client_cython.pyx", "setup_cython_example.py"):
        shutil.copy(EXAMPLES / name, build_dir / name)
    result = subprocess.run(
        [sys.executable, "setup_cython_example.py", "build_ext", "--inplace", "-q"],
        cwd=build_dir, env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"build failed:\n{result.stdout}\n{result.stderr}"
    sys.path.insert(0, str(build_dir))
    try:
        module = importlib.import_module("echo_client_cython")
    finally:
        sys.path.remove(str(build_dir))
    module.BUILD_DIR = build_dir
    return module


@pytest.fixture
def echo_server_process():
    """examples/echo_server.py running on a free port; yields its port."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(EXAMPLES / "echo_server.py"), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())
    try:
        line = _readline(proc.stdout, PROCESS_TIMEOUT)
        assert line.startswith("Server started"), (
            f"echo_server.py did not start: {line!r} {proc.poll()!r}")
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(PROCESS_TIMEOUT)
        proc.stdout.close()
        proc.stderr.close()


def test_echo_client_against_echo_server(echo_server_process):
    proc, port = echo_server_process
    client = subprocess.run([sys.executable, str(EXAMPLES / "echo_client.py"),
                             f"ws://127.0.0.1:{port}/"],
                            capture_output=True, text=True, timeout=PROCESS_TIMEOUT, check=False,
                            env=_env())
    assert client.returncode == 0, client.stderr
    assert "Echo reply: Hello world" in client.stdout
    assert "Traceback" not in client.stderr
    # Ctrl-C stops the server cleanly.
    proc.send_signal(signal.SIGINT)
    proc.wait(PROCESS_TIMEOUT)
    stderr = proc.stderr.read()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_cython_client_main_against_echo_server(cython_example, echo_server_process):
    _, port = echo_server_process
    client = subprocess.run(
        [sys.executable, "-c", "import echo_client_cython; echo_client_cython.main()",
         f"ws://127.0.0.1:{port}/"],
        capture_output=True, text=True, timeout=PROCESS_TIMEOUT, check=False,
        env=_env(cython_example.BUILD_DIR), cwd=cython_example.BUILD_DIR)
    assert client.returncode == 0, client.stderr
    assert "Echo reply: Hello world" in client.stdout


# Every header length (7-bit, 16-bit, 64-bit) so the full 14-byte headroom is used.
@pytest.mark.parametrize("size", [0, 11, 125, 126, 65535, 65536, 200000])
async def test_cython_listener_echo(cython_example, net, size):
    message = (b"Hello world, " * (size // 13 + 1))[:size]  # sent as TEXT: valid UTF-8
    async with serve(net) as server:
        reply = await wait_for(cython_example.echo(server.url(), message,
                                                   ssl_context=net.client_ssl))
    assert reply == message


def test_msgspec_send():
    # tox installs msgspec (tox.ini deps), so CI always runs this.
    pytest.importorskip("msgspec")
    result = subprocess.run([sys.executable, str(EXAMPLES / "msgspec_send.py"), "20000"],
                            capture_output=True, text=True, timeout=PROCESS_TIMEOUT,
                            check=False, env=_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("received 20000 quotes; last: Quote(symbol='BTC-USD'")
    assert "Traceback" not in result.stderr

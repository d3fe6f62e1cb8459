"""ws_connect through real proxies: tinyproxy (HTTP CONNECT with BasicAuth, and
behind a TLS terminator written here as an https:// proxy), microsocks (SOCKS5
with user/password) and dante (SOCKS4, SOCKS4a, SOCKS5, SOCKS5h), each started on
127.0.0.1 and a free port for the session and stopped after it.

Every echo runs on both loops and over ws:// and wss:// (``net``); with
wss:// on the default asyncio loop TLS with the target is picows' own, over
the tunnel socket. Each proxy's own log must show the tunnel to the test's
server port. A test skips, saying which binary is missing, when a proxy is
not installed (.ci/run installs them all).

Hand-written misbehaving proxies (raw asyncio servers) cover what a real
proxy will not do on purpose: answering 502, closing mid-response, never
answering.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from picows import WSMsgType, WSParsedURL, WSProxyError, ws_connect

from tests.support import (Net, RecordingListener, connect, raw_server, serve, stop_process,
    wait_for)

USER = "picows-user"
PASSWORD = "s3cr3t-Pa55"  # must appear in no message and no log line
FAST = 1.5  # "fails fast": well under the 5 s websocket_handshake_timeout
ENV_NAMES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ws_proxy", "wss_proxy")

if not os.environ.get("PICOWS_REQUIRE_PROXIES"):  # CI sets it: there, missing fails
    pytest.importorskip("python_socks", reason="python-socks (picows[proxy]) is not installed")


# --------------------------------------------------------------------------
# Real proxies, one process each per session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProxyProcess:
    def __init__(self, name: str, argv: list[str], port: int, log: Path) -> None:
        self.name = name
        self.port = port
        self.log = log
        out = open(log.with_suffix(".out"), "wb")
        self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        deadline = time.monotonic() + 10
        while True:  # a readiness poll of a child process, not a wait for correctness
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {self.output()}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not listen on {port}: {self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        text = ""
        for path in (self.log, self.log.with_suffix(".out")):
            if path.exists():
                text += path.read_text(errors="replace")
        return text

    def stop(self) -> None:
        stop_process(self.proc, 5)


def binary(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        why = (f"{name} is not installed (apt-get install "
               f"{'dante-server' if name == 'danted' else name})")
        if os.environ.get("PICOWS_REQUIRE_PROXIES"):
            pytest.fail(why)
        pytest.skip(why)
    return path


@pytest.fixture(scope="session")
def proxy_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("proxies")
    path.chmod(0o777)  # tinyproxy and danted may drop to another user
    return path


def _tinyproxy(proxy_dir: Path, name: str, extra: str = ""):
    port = free_port()
    log = proxy_dir / f"{name}.log"
    conf = proxy_dir / f"{name}.conf"
    conf.write_text(f"Port {port}\nListen 127.0.0.1\nTimeout 60\nLogFile \"{log}\"\n"
                    f"LogLevel Info\nMaxClients 50\nAllow 127.0.0.0/8\n"
                    f"BasicAuth {USER} {PASSWORD}\n{extra}")
    proc = ProxyProcess(name, [binary("tinyproxy"), "-d", "-c", str(conf)], port, log)
    return proc


@pytest.fixture(scope="session")
def tinyproxy(proxy_dir):
    proc = _tinyproxy(proxy_dir, "tinyproxy")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def tinyproxy_port_1_only(proxy_dir):
    """A tinyproxy whose policy allows CONNECT to port 1 only: 403 otherwise."""
    proc = _tinyproxy(proxy_dir, "tinyproxy-403", "ConnectPort 1\n")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def microsocks(proxy_dir):
    port = free_port()
    log = proxy_dir / "microsocks.log"  # it logs to stderr: the .out file
    proc = ProxyProcess("microsocks", [binary("microsocks"), "-i", "127.0.0.1", "-p", str(port),
                                       "-u", USER, "-P", PASSWORD], port, log)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def dante(proxy_dir):
    port = free_port()
    log = proxy_dir / "danted.log"
    conf = proxy_dir / "danted.conf"
    conf.write_text(f"""logoutput: {log}
internal: 127.0.0.1 port = {port}
external: 127.0.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{
    from: 127.0.0.0/8 to: 0.0.0.0/0
    log: connect error
}}
socks pass {{
    from: 127.0.0.0/8 to: 0.0.0.0/0
    command: connect
    log: connect error
}}
""")
    proc = ProxyProcess("danted", [binary("danted"), "-f", str(conf), "-N", "1",
                                   "-p", str(proxy_dir / "danted.pid")], port, log)
    yield proc
    proc.stop()


@contextlib.asynccontextmanager
async def tls_terminator(server_ssl: ssl.SSLContext, backend_port: int):
    """An https:// proxy: TLS from the client, relayed in clear to `backend_port`."""
    tasks: set[asyncio.Task] = set()
    writers: list[asyncio.StreamWriter] = []

    async def pump(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def handle(reader, writer):
        tasks.add(asyncio.current_task())
        writers.append(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend_port)
        except OSError:
            writer.close()
            return
        writers.append(up_writer)
        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ssl)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.transport.abort()
        await wait_for(asyncio.gather(*tasks, return_exceptions=True))


# --------------------------------------------------------------------------
# Helpers


async def echo_once(transport, listener: RecordingListener, text: bytes = b"hello proxy"):
    transport.send(WSMsgType.TEXT, text)
    frame = await listener.next_frame()
    assert (frame.msg_type, frame.payload) == (WSMsgType.TEXT, text)


async def relays_done():
    """Let https-proxy relays end after their connection closed."""
    from picows import proxy as proxy_module
    if proxy_module._RELAYS:
        await wait_for(asyncio.gather(*proxy_module._RELAYS, return_exceptions=True))


def assert_in_log(proc: ProxyProcess, needle: str) -> None:
    assert needle in proc.output(), f"{proc.name}'s log does not show {needle!r}"


def creds_url(scheme: str, port: int, user: str = USER, password: str = PASSWORD) -> str:
    return f"{scheme}://{user}:{password}@127.0.0.1:{port}"


def assert_no_secret(exc: BaseException, caplog) -> None:
    for text in (str(exc), repr(exc), *(r.getMessage() for r in caplog.records)):
        assert PASSWORD not in text and USER not in text, text


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


# --------------------------------------------------------------------------
# Echo through each proxy, ws:// and wss://, both loops


async def test_http_connect_echo(net, tinyproxy, caplog):
    caplog.set_level(logging.DEBUG, logger="picows")
    async with serve(net) as server:
        async with connect(net, server.url(),
                           proxy=creds_url("http", tinyproxy.port)) as (transport, listener):
            await echo_once(transport, listener)
            # wss://: picows' own TLS (both loops), over the tunnel socket.
            own_tls = net.tls and not os.environ.get("PICOWS_LOOP_TLS")
            assert (type(transport.underlying_transport).__name__ == "_TLSTransport") == own_tls
            assert transport.underlying_transport.get_extra_info("peername") == (
                "127.0.0.1", tinyproxy.port)
    assert_in_log(tinyproxy, f"CONNECT 127.0.0.1:{server.port} HTTP/1.1")
    assert any("through proxy http://127.0.0.1" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()


async def test_https_proxy_echo(net, tinyproxy, tls_pair):
    server_ssl, client_ssl = tls_pair
    async with tls_terminator(server_ssl, tinyproxy.port) as port:
        async with serve(net) as server:
            async with connect(net, server.url(), proxy=creds_url("https", port),
                               proxy_ssl_context=client_ssl) as (transport, listener):
                await echo_once(transport, listener)
                await echo_once(transport, listener, b"x" * 200_000)
        await relays_done()
    assert_in_log(tinyproxy, f"CONNECT 127.0.0.1:{server.port} HTTP/1.1")


async def test_https_proxy_checks_its_certificate(tcp, tinyproxy, tls_pair):
    server_ssl, _ = tls_pair
    async with tls_terminator(server_ssl, tinyproxy.port) as port:
        async with serve(tcp) as server:
            with pytest.raises(WSProxyError) as info:
                # The default context does not trust the test CA.
                await wait_for(ws_connect(RecordingListener, server.url(),
                                          proxy=f"https://127.0.0.1:{port}"))
    assert info.value.hop == "proxy" and "TLS" in str(info.value)


async def test_wss_through_proxy_checks_the_target_certificate(tls, tinyproxy):
    """TLS is with the target, end to end: its certificate is checked against
    the client's context (here the default one, which does not trust the test
    CA), whatever the proxy does."""
    async with serve(tls) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            await wait_for(ws_connect(RecordingListener, server.url(),
                                      proxy=creds_url("http", tinyproxy.port)))
    assert_in_log(tinyproxy, f"CONNECT 127.0.0.1:{server.port} HTTP/1.1")


async def test_socks5_microsocks_echo(net, microsocks):
    async with serve(net) as server:
        async with connect(net, server.url(),
                           proxy=creds_url("socks5", microsocks.port)) as (transport, listener):
            await echo_once(transport, listener)
    assert_in_log(microsocks, f"connected to 127.0.0.1:{server.port}")


@pytest.mark.parametrize("scheme", ["socks4", "socks5", "socks5h"])
async def test_socks_dante_echo(net, dante, scheme):
    async with serve(net) as server:
        # localhost: socks4/socks5 resolve it here, socks5h at the proxy.
        url = server.url().replace("127.0.0.1", "localhost") if scheme == "socks5h" \
            else server.url()
        kwargs = {"server_hostname": "127.0.0.1"} if net.tls else {}
        async with connect(net, url, proxy=f"{scheme}://127.0.0.1:{dante.port}",
                           **kwargs) as (transport, listener):
            await echo_once(transport, listener)
    assert_in_log(dante, f"127.0.0.1.{server.port}")


async def test_socks4a_sends_the_name(net):
    """Dante 1.4 has no SOCKS4a (it connects to 0.0.0.1): a small SOCKS4a
    server here checks the request names the host, then relays."""
    requests: list[bytes] = []

    async with serve(net) as server:
        async def socks4a(reader, writer):
            head = await reader.readexactly(8)
            user = await reader.readuntil(b"\0")
            name = await reader.readuntil(b"\0")
            requests.append(head + user + name)
            port = int.from_bytes(head[2:4], "big")
            up_reader, up_writer = await asyncio.open_connection(name[:-1].decode(), port)
            writer.write(b"\0\x5a" + head[2:8])

            async def pump(src, dst):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                dst.close()

            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer),
                                 return_exceptions=True)

        async with raw_server(Net("tcp"), socks4a) as port:
            url = server.url().replace("127.0.0.1", "localhost")
            kwargs = {"server_hostname": "127.0.0.1"} if net.tls else {}
            async with connect(net, url, proxy=f"socks4a://{USER}@127.0.0.1:{port}",
                               **kwargs) as (transport, listener):
                await echo_once(transport, listener)
    head = requests[0]
    assert head[:2] == b"\x04\x01" and head[4:7] == b"\0\0\0" and head[7] != 0
    assert head[8:] == USER.encode() + b"\0localhost\0"


# --------------------------------------------------------------------------
# Refusals and failures: WSProxyError, fast, no credentials anywhere


async def refused_with_wrong_password(tcp, scheme: str, port: int, caplog) -> WSProxyError:
    """The WSProxyError of a connection through the proxy with a wrong
    password; the refusal must come fast (no retry, no timeout)."""
    caplog.set_level(logging.DEBUG)
    async with serve(tcp) as server:
        start = time.monotonic()
        with pytest.raises(WSProxyError) as info:
            await ws_connect(RecordingListener, server.url(),
                             proxy=creds_url(scheme, port, password="wrong"))
        assert time.monotonic() - start < FAST
    return info.value


async def test_http_wrong_credentials(tcp, tinyproxy, caplog):
    exc = await refused_with_wrong_password(tcp, "http", tinyproxy.port, caplog)
    # tinyproxy answers 407 without credentials, 401 Unauthorized for wrong ones.
    assert (exc.hop, exc.status, exc.reason) == ("proxy", 401, "Unauthorized")
    assert "401 Unauthorized" in str(exc)
    assert exc.proxy == f"http://127.0.0.1:{tinyproxy.port}"
    assert "wrong" not in str(exc)
    assert_no_secret(exc, caplog)


async def test_http_no_credentials_407(tcp, tinyproxy):
    async with serve(tcp) as server:
        with pytest.raises(WSProxyError) as info:
            await wait_for(ws_connect(RecordingListener, server.url(),
                                      proxy=f"http://127.0.0.1:{tinyproxy.port}"))
    exc = info.value
    assert (exc.hop, exc.status, exc.reason) == ("proxy", 407, "Proxy Authentication Required")
    assert "407 Proxy Authentication Required" in str(exc)


async def test_http_policy_403(tcp, tinyproxy_port_1_only):
    async with serve(tcp) as server:
        with pytest.raises(WSProxyError) as info:
            await wait_for(ws_connect(RecordingListener, server.url(),
                                      proxy=creds_url("http", tinyproxy_port_1_only.port)))
    assert (info.value.hop, info.value.status) == ("proxy", 403)


async def test_http_target_unreachable(tcp, tinyproxy):
    port = free_port()  # nothing listens there
    with pytest.raises(WSProxyError) as info:
        await wait_for(ws_connect(RecordingListener, f"ws://127.0.0.1:{port}/",
                                  proxy=creds_url("http", tinyproxy.port)))
    assert info.value.hop == "target" and info.value.status == 500
    assert f"127.0.0.1:{port}" in str(info.value)


async def test_socks5_wrong_credentials(tcp, microsocks, caplog):
    exc = await refused_with_wrong_password(tcp, "socks5", microsocks.port, caplog)
    assert exc.hop == "proxy"
    assert "authentication" in str(exc).lower()
    assert_no_secret(exc, caplog)


async def test_socks_target_unreachable(tcp, dante):
    port = free_port()
    for scheme in ("socks4", "socks5"):
        with pytest.raises(WSProxyError) as info:
            await wait_for(ws_connect(RecordingListener, f"ws://127.0.0.1:{port}/",
                                      proxy=f"{scheme}://127.0.0.1:{dante.port}"))
        assert info.value.hop == "target", (scheme, info.value)


@pytest.mark.parametrize("scheme", ["http", "https", "socks4", "socks5"])
async def test_dead_proxy_fails_fast(tcp, scheme, caplog):
    port = free_port()
    start = time.monotonic()
    with pytest.raises(WSProxyError) as info:
        await ws_connect(RecordingListener, "ws://127.0.0.1:9/",
                         proxy=creds_url(scheme, port))
    assert time.monotonic() - start < FAST
    assert info.value.hop == "proxy"
    assert f"{scheme}://127.0.0.1:{port}" in str(info.value)
    assert_no_secret(info.value, caplog)


async def _misbehaving_proxy(behaviour: str):
    async def handler(reader, writer):
        await reader.read(1)
        if behaviour == "502":
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        elif behaviour == "half":
            writer.write(b"HTTP/1.1 200 Conn")
        elif behaviour == "garbage":
            writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        elif behaviour == "silent":
            await reader.read()  # until the client gives up
        await writer.drain()
        writer.close()
    return raw_server(Net("tcp"), handler)


async def test_http_502_is_the_target_hop(tcp):
    async with await _misbehaving_proxy("502") as port:
        with pytest.raises(WSProxyError) as info:
            await wait_for(ws_connect(RecordingListener, "ws://example.invalid/",
                                      proxy=f"http://127.0.0.1:{port}"))
    assert (info.value.hop, info.value.status, info.value.reason) == ("target", 502,
                                                                      "Bad Gateway")
    assert "502 Bad Gateway" in str(info.value)


@pytest.mark.parametrize("scheme", ["http", "https", "socks5", "socks4"])
async def test_proxy_closes_mid_handshake(tcp, scheme):
    async with await _misbehaving_proxy("half") as port:
        factory_socks: list[socket.socket] = []

        def factory(where):
            factory_socks.append(socket.socket())
            return factory_socks[-1]

        start = time.monotonic()
        with pytest.raises(WSProxyError) as info:
            await ws_connect(RecordingListener, "ws://127.0.0.1:9/",
                             proxy=creds_url(scheme, port), socket_factory=factory)
        assert time.monotonic() - start < FAST
    assert info.value.hop == "proxy"
    assert factory_socks[0].fileno() == -1  # closed


async def test_proxy_answers_garbage(tcp):
    async with await _misbehaving_proxy("garbage") as port:
        with pytest.raises(WSProxyError, match="garbage"):
            await wait_for(ws_connect(RecordingListener, "ws://127.0.0.1:9/",
                                      proxy=f"http://127.0.0.1:{port}"))


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_silent_proxy_bounded_by_handshake_timeout(tcp, scheme):
    async with await _misbehaving_proxy("silent") as port:
        start = time.monotonic()
        with pytest.raises(WSProxyError, match="within 0.3 s") as info:
            await wait_for(ws_connect(RecordingListener, "ws://127.0.0.1:9/",
                                      proxy=f"{scheme}://127.0.0.1:{port}",
                                      websocket_handshake_timeout=0.3))
        assert 0.25 < time.monotonic() - start < FAST
    assert info.value.hop == "proxy"


# --------------------------------------------------------------------------
# proxy=True: the environment, as urllib.request reads it


async def test_proxy_true_reads_env(net, tinyproxy, monkeypatch):
    name = "HTTPS_PROXY" if net.tls else "HTTP_PROXY"
    monkeypatch.setenv(name, creds_url("http", tinyproxy.port))
    async with serve(net) as server:
        async with connect(net, server.url(), proxy=True) as (transport, listener):
            await echo_once(transport, listener)
    assert_in_log(tinyproxy, f"CONNECT 127.0.0.1:{server.port} HTTP/1.1")


async def test_proxy_true_all_proxy_socks(tcp, microsocks, monkeypatch):
    monkeypatch.setenv("ALL_PROXY", creds_url("socks5", microsocks.port))
    async with serve(tcp) as server:
        async with connect(tcp, server.url(), proxy=True) as (transport, listener):
            await echo_once(transport, listener)
    assert_in_log(microsocks, f"connected to 127.0.0.1:{server.port}")


async def test_proxy_true_uses_the_env_proxy(tcp, monkeypatch):
    dead = free_port()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead}")
    with pytest.raises(WSProxyError, match=str(dead)):
        await wait_for(ws_connect(RecordingListener, "ws://127.0.0.1:9/", proxy=True))


async def test_no_proxy_bypasses(net, monkeypatch):
    dead = free_port()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead}")
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{dead}")
    monkeypatch.setenv("NO_PROXY", "example.com,127.0.0.1")
    async with serve(net) as server:
        async with connect(net, server.url(), proxy=True) as (transport, listener):
            await echo_once(transport, listener)


async def test_proxy_true_without_env_connects_directly(tcp):
    async with serve(tcp) as server:
        async with connect(tcp, server.url(), proxy=True) as (transport, listener):
            await echo_once(transport, listener)


# --------------------------------------------------------------------------
# socket_factory


@pytest.mark.parametrize("kind", ["sync-connected", "sync-unconnected",
                                  "async-connected", "async-unconnected", "none"])
async def test_socket_factory(net, kind):
    seen: list[WSParsedURL] = []
    made: list[socket.socket] = []

    def make(where: WSParsedURL):
        seen.append(where)
        if kind == "none":
            return None
        sock = socket.socket()
        if kind.endswith("-connected"):
            sock.connect((where.host, where.port))
        made.append(sock)
        return sock

    async def make_async(where):
        return make(where)

    async with serve(net) as server:
        factory = make_async if kind.startswith("async") else make
        async with connect(net, server.url("/p?q=1"), socket_factory=factory) as (
                transport, listener):
            await echo_once(transport, listener)
            if made:
                peer = transport.underlying_transport.get_extra_info("peername")
                assert peer == made[0].getpeername()
    assert seen == [WSParsedURL(net.scheme, "127.0.0.1", server.port, net.tls, "/p?q=1")]


async def test_socket_factory_with_proxy_gets_the_proxy(net, tinyproxy):
    seen: list[WSParsedURL] = []

    async def factory(where):
        seen.append(where)
        return socket.create_connection((where.host, where.port))

    async with serve(net) as server:
        async with connect(net, server.url(), proxy=creds_url("http", tinyproxy.port),
                           socket_factory=factory) as (transport, listener):
            await echo_once(transport, listener)
    assert seen == [WSParsedURL("http", "127.0.0.1", tinyproxy.port, False, "")]
    assert_in_log(tinyproxy, f"CONNECT 127.0.0.1:{server.port} HTTP/1.1")


async def test_local_addr_binds_the_socket_to_the_proxy(tcp, tinyproxy):
    async with serve(tcp) as server:
        async with connect(tcp, server.url(), proxy=creds_url("http", tinyproxy.port),
                           local_addr=("127.0.0.2", 0)) as (transport, listener):
            await echo_once(transport, listener)
            sockname = transport.underlying_transport.get_extra_info("sockname")
            assert sockname[0] == "127.0.0.2"


async def test_socket_factory_errors(tcp):
    with pytest.raises(TypeError, match="socket_factory returned str"):
        await ws_connect(RecordingListener, "ws://127.0.0.1:9/", socket_factory=lambda w: "x")
    with pytest.raises(ValueError, match="sock cannot be combined"):
        await ws_connect(RecordingListener, "ws://127.0.0.1:9/", socket_factory=lambda w: None,
                         sock=socket.socket())
    made = []

    def refused(where):
        made.append(socket.socket())
        return made[-1]

    with pytest.raises(ConnectionRefusedError):
        await ws_connect(RecordingListener, f"ws://127.0.0.1:{free_port()}/",
                         socket_factory=refused)
    assert made[0].fileno() == -1


async def test_missing_python_socks_names_the_extra(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "python_socks", None)
    with pytest.raises(ImportError, match=r"picows\[proxy\]"):
        await ws_connect(RecordingListener, "ws://127.0.0.1:9/",
                         proxy="socks5://127.0.0.1:1080")


"""A real browser as the client of a picows server: headless Chromium, driven
over the DevTools protocol, runs ``new WebSocket(...)`` against
``ws_create_server`` on both loops, over ws:// and wss://.

The browser is what most picows servers talk to, and its WebSocket stack is
independent of everything else in these tests (the raw client, picows's own
client, the ``websockets`` package). Covered: TEXT and BINARY echoes from 0 B
to 1 MiB with and without permessage-deflate (the extension checked on both
ends: JS ``ws.extensions`` and the server transport's ``extensions``), and the
close handshake with a code and a reason in both directions.

How it is driven: Chromium starts once per module (``--headless
--remote-debugging-port=0``); its port comes from the ``DevToolsActivePort``
file in the profile directory, its page target from ``/json/list``. Each test
connects to that page with the ``websockets`` client and runs one async JS
function with ``Runtime.evaluate`` (``awaitPromise``), which returns a JSON
summary; the payloads themselves never cross the DevTools connection. The JS
builds its payloads with the same rules as ``text_payload``/``pattern`` here,
so the server checks what arrived byte for byte and the browser checks the
echo.

Skipped when no Chromium binary is found (``apt-get install chromium``, or set
``PICOWS_CHROMIUM`` to a Chromium/Chrome binary). CI installs it.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as websockets_connect

from picows import WSMsgType

from tests.support import (TIMEOUT, Net, RecordingListener, pattern, serve, stop_process,
    wait_for)

PMD = "permessage-deflate"
SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
STARTUP_TIMEOUT = 30.0
# Chromium's unit of text built by text_payload: 1-, 2-, 3- and 4-byte UTF-8.
TEXT_UNIT = ["p", "i", "c", "o", "w", "s", " ", "\u00e9", "\u20ac", "\U0001F600", " "]


def chromium_binary() -> str | None:
    explicit = os.environ.get("PICOWS_CHROMIUM")
    if explicit:
        return explicit
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_environment() -> dict[str, str]:
    """Ours minus the sanitizer runtime that ``tox -e asan`` preloads for the
    picows build: it is no business of the browser's."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


def text_payload(size: int) -> bytes:
    """``size`` bytes of UTF-8: TEXT_UNIT repeated while a whole character
    fits, then ASCII ``x``. textOf() in JS_HELPERS is the same rule."""
    out, n = [], 0
    for ch in itertools.cycle(TEXT_UNIT):
        b = len(ch.encode())
        if n + b > size:
            break
        out.append(ch)
        n += b
    return ("".join(out) + "x" * (size - n)).encode()


# --------------------------------------------------------------------------
# Chromium and a minimal DevTools client


class Browser:
    """A headless Chromium process with one page to run JS in."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.stderr_path = profile.parent / "chromium-stderr.log"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in close()
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to
        # start. --disable-dev-shm-usage: containers often have a tiny /dev/shm.
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--mute-audio",
             # wss:// to the trustme certificate of the session: the browser's
             # TLS stack against picows's, not certificate validation.
             "--ignore-certificate-errors",
             "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
            env=browser_environment())
        self.page_url = self._find_page(profile / "DevToolsActivePort")

    def _find_page(self, active_port: Path) -> str:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}:\n"
                                   + self.stderr_tail())
            lines = active_port.read_text().split("\n") if active_port.exists() else []
            if len(lines) >= 2 and lines[0].strip().isdigit():
                port = int(lines[0])
                with contextlib.suppress(OSError, ValueError):
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list",
                                                timeout=5) as r:
                        targets = json.load(r)
                    pages = [t for t in targets if t.get("type") == "page"]
                    if pages:
                        return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.05)
        raise RuntimeError(f"chromium gave no page target in {STARTUP_TIMEOUT:.0f} s:\n"
                           + self.stderr_tail())

    def stderr_tail(self, lines: int = 20) -> str:
        self._stderr.flush()
        text = self.stderr_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def close(self) -> None:
        stop_process(self.proc, 10)
        self._stderr.close()

    async def run(self, js_function: str, *args, timeout: float = TIMEOUT) -> dict:
        """Call an async JS function with JSON arguments in the page and
        return its (JSON) result. A JS exception fails the test."""
        arguments = ", ".join(map(json.dumps, args))
        expression = (f"(async () => {{{JS_HELPERS}\n"
                      f"return await ({js_function})({arguments});\n}})()")
        async with websockets_connect(self.page_url, max_size=None, ping_interval=None,
                                      open_timeout=TIMEOUT) as cdp:
            await cdp.send(json.dumps({
                "id": 1, "method": "Runtime.evaluate",
                "params": {"expression": expression,
                           "awaitPromise": True, "returnByValue": True}}))

            async def reply() -> dict:
                while True:  # skip events; only our call has an id
                    message = json.loads(await cdp.recv())
                    if message.get("id") == 1:
                        return message

            message = await asyncio.wait_for(reply(), timeout)
        assert "error" not in message, message["error"]
        result = message["result"]
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            description = details.get("exception", {}).get("description") or details["text"]
            pytest.fail(f"JS threw: {description}")
        return result["result"]["value"]


@pytest.fixture(scope="module")
def browser():
    binary = chromium_binary()
    if binary is None:
        why = "no Chromium binary (apt-get install chromium, or set PICOWS_CHROMIUM)"
        if os.environ.get("PICOWS_REQUIRE_BROWSER"):  # CI sets it: there, missing fails
            pytest.fail(why)
        pytest.skip(why)
    with tempfile.TemporaryDirectory(prefix="picows-chromium-") as tmp:
        b = Browser(binary, Path(tmp) / "profile")
        try:
            yield b
        finally:
            b.close()


# --------------------------------------------------------------------------
# The JS side

JS_HELPERS = r"""
const TEXT_UNIT = %s;
const UNIT_BYTES = TEXT_UNIT.map((ch) => new TextEncoder().encode(ch).length);
function textOf(size) {
  const out = [];
  let n = 0;
  for (let i = 0; ; i++) {
    const ch = TEXT_UNIT[i %% TEXT_UNIT.length];
    const b = UNIT_BYTES[i %% TEXT_UNIT.length];
    if (n + b > size) break;
    out.push(ch);
    n += b;
  }
  return out.join("") + "x".repeat(size - n);
}
function binaryOf(size) {
  const a = new Uint8Array(size);
  for (let i = 0; i < size; i++) a[i] = ((i %% 251) * 7 + 3) & 0xFF;
  return a;
}
function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
function withTimeout(promise, what) {
  return Promise.race([promise, new Promise((_, reject) =>
    setTimeout(() => reject(new Error("timed out: " + what)), %d))]);
}
// Opens a WebSocket; resolves once open. ws.closed resolves with the close
// event; ws.next() with the next message.
async function open(url) {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const queue = [];
  let waiter = null;
  ws.onmessage = (e) => {
    if (waiter) { const w = waiter; waiter = null; w(e.data); } else queue.push(e.data);
  };
  ws.closed = new Promise((resolve) => {
    ws.onclose = (e) => resolve({code: e.code, reason: e.reason, wasClean: e.wasClean});
  });
  ws.next = () => withTimeout(queue.length ? Promise.resolve(queue.shift())
                                           : new Promise((r) => { waiter = r; }), "message");
  await withTimeout(new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("WebSocket error before open: " + url));
  }), "open");
  return ws;
}
""" % (json.dumps(TEXT_UNIT), int(TIMEOUT * 1000))

JS_ECHO = r"""
async (url, sizes, kind) => {
  const ws = await open(url);
  const results = [];
  for (const size of sizes) {
    const data = kind === "text" ? textOf(size) : binaryOf(size);
    ws.send(data);
    const got = await ws.next();
    const ok = kind === "text"
      ? typeof got === "string" && got === data
      : got instanceof ArrayBuffer && sameBytes(new Uint8Array(got), data);
    results.push({size, ok, got: typeof got === "string" ? "string" : got.constructor.name});
  }
  const extensions = ws.extensions;
  ws.close(1000);
  return {extensions, results, close: await withTimeout(ws.closed, "close")};
}
"""

JS_BROWSER_CLOSES = r"""
async (url, code, reason) => {
  const ws = await open(url);
  ws.close(code, reason);
  return await withTimeout(ws.closed, "close");
}
"""

JS_SERVER_CLOSES = r"""
async (url) => {
  const ws = await open(url);
  ws.send("close, please");
  return await withTimeout(ws.closed, "close");
}
"""


# --------------------------------------------------------------------------
# The server side


class MessageEcho(RecordingListener):
    """Echoes every data frame as it came and records whole messages
    (type, payload) in ``messages``; other frames go to ``frames``."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[tuple[WSMsgType, bytes]] = []
        self._parts: list[bytes] = []
        self._type: WSMsgType | None = None

    def on_ws_frame(self, transport, frame) -> None:
        if frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION):
            payload = frame.get_payload_as_bytes()
            transport.send(frame.msg_type, payload, fin=frame.fin)
            if frame.msg_type != WSMsgType.CONTINUATION:
                self._type = frame.msg_type
            self._parts.append(payload)
            if frame.fin:
                self.messages.append((self._type, b"".join(self._parts)))
                self._parts = []
        else:
            super().on_ws_frame(transport, frame)


class ClosesOnRequest(RecordingListener):
    """Answers the first TEXT message with CLOSE 4001 and a UTF-8 reason."""

    CODE = 4001
    REASON = "bye from picows \u2713"

    def on_ws_frame(self, transport, frame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            transport.send_close(self.CODE, self.REASON.encode())
        super().on_ws_frame(transport, frame)


# --------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("compression", [False, True], ids=["plain", "deflate"])
@pytest.mark.parametrize("msg_type", [WSMsgType.TEXT, WSMsgType.BINARY], ids=["text", "binary"])
async def test_browser_echo(browser, net, msg_type, compression):
    kind = "text" if msg_type == WSMsgType.TEXT else "binary"
    async with serve(net, lambda request: MessageEcho(),
                     enable_compression=compression) as server:
        out = await browser.run(JS_ECHO, server.url("/echo"), SIZES, kind,
                                timeout=4 * TIMEOUT)
        listener = await server.next_listener()
        await wait_for(listener.disconnected)

    failed = [r for r in out["results"] if not r["ok"]]
    assert not failed, f"the browser got back something else: {failed}"
    build = text_payload if kind == "text" else pattern
    assert listener.messages == [(msg_type, build(size)) for size in SIZES]
    # Negotiated permessage-deflate, as each end sees it.
    if compression:
        assert out["extensions"].startswith(PMD), out["extensions"]
        assert listener.transport.extensions.startswith(PMD), listener.transport.extensions
    else:
        assert out["extensions"] == ""
        assert not listener.transport.extensions
    assert out["close"] == {"code": 1000, "reason": "", "wasClean": True}
    close = await listener.next_of(WSMsgType.CLOSE)
    assert close.close_code == 1000


async def test_browser_closes_with_code_and_reason(browser):
    reason = "bye from the browser \u2713"
    async with serve(Net("tcp")) as server:
        out = await browser.run(JS_BROWSER_CLOSES, server.url(), 4000, reason)
        listener = await server.next_listener()
        close = await listener.next_of(WSMsgType.CLOSE)
        await wait_for(listener.disconnected)
    assert (close.close_code, close.close_message) == (4000, reason.encode())
    # picows echoes the code it received (RFC 6455 5.5.1), and the browser
    # reports the handshake as clean.
    assert out["code"] == 4000 and out["wasClean"] is True, out


async def test_server_closes_with_code_and_reason(browser):
    async with serve(Net("tcp"), lambda request: ClosesOnRequest()) as server:
        out = await browser.run(JS_SERVER_CLOSES, server.url())
        listener = await server.next_listener()
        await wait_for(listener.disconnected)
    assert out == {"code": ClosesOnRequest.CODE, "reason": ClosesOnRequest.REASON,
                   "wasClean": True}
    # The browser answered the close (with the same code, as browsers do).
    close = await listener.next_of(WSMsgType.CLOSE)
    assert close.close_code == ClosesOnRequest.CODE
    assert listener.transport.is_close_frame_sent

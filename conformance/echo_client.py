"""Autobahn testee: a picows echo client, for wstest's fuzzingserver mode.

Asks the fuzzing server for the case count (``/getCaseCount``), runs every
case (``/runCase?case=N&agent=A``) on a new connection that echoes TEXT,
BINARY and CONTINUATION frames as they arrive (same opcode, payload, RSV1
and FIN) until the server disconnects, then asks the server to write its
reports (``/updateReports?agent=A``).  Everything else (UTF-8 validation,
ping replies, the close handshake, protocol errors) is picows's own default
behaviour, which is what the gate measures.  Public API only.

    python conformance/echo_client.py [--url ws://127.0.0.1:9001] [--agent picows]
                                      [--ca-file CA.pem]

A ``wss://`` URL connects over TLS, trusting the system's CAs or only
``--ca-file`` (the runner's ``--tls``: wstest presents a certificate the
runner made), with host name checks on.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import sys
import time

from testee_loop import install_loop

MAX_FRAME_SIZE = 20 * 1024 * 1024  # 9.* send frames and messages of up to 16 MiB
# A case that outlives this is abandoned (wstest fails it, the gate sees it);
# the slowest 9.* cases take a few seconds.
CASE_TIMEOUT = 120.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="ws://127.0.0.1:9001",
                   help="the wstest fuzzing server")
    p.add_argument("--agent", default="picows", help="agent name in the reports")
    p.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                   help="event loop: uvloop if importable (auto), or force one")
    p.add_argument("--max-frame-size", type=int, default=MAX_FRAME_SIZE)
    p.add_argument("--case-timeout", type=float, default=CASE_TIMEOUT)
    p.add_argument("--ca-file", help="PEM CA to trust for a wss:// URL")
    p.add_argument("-v", "--verbose", action="store_true", help="picows debug logging")
    return p.parse_args(argv)


def client_ssl_context(url: str, ca_file: str | None) -> ssl.SSLContext | None:
    if not url.startswith("wss:"):
        return None
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)


async def run(url: str, agent: str, max_frame_size: int, case_timeout: float,
              ssl_context: ssl.SSLContext | None = None) -> int:
    from picows import WSListener, WSMsgType, ws_connect

    echoed = (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION)

    class EchoListener(WSListener):
        def on_ws_frame(self, transport, frame):
            if frame.msg_type in echoed:
                transport.send(frame.msg_type, frame.get_payload_as_memoryview(),
                               frame.rsv1, fin=frame.fin)

    class CountListener(WSListener):
        count: int | None = None

        def on_ws_frame(self, transport, frame):
            if frame.msg_type == WSMsgType.TEXT:
                self.count = int(frame.get_payload_as_utf8_text())

    url = url.rstrip("/")

    transport, counter = await ws_connect(CountListener, f"{url}/getCaseCount",
                                        ssl_context=ssl_context)
    await transport.wait_disconnected()
    if counter.count is None:
        print("echo_client: no case count from the fuzzing server", file=sys.stderr)
        return 1
    print(f"echo_client: {counter.count} cases", flush=True)

    problems = 0
    for case in range(1, counter.count + 1):
        started = time.monotonic()
        try:
            transport, _ = await ws_connect(
                EchoListener, f"{url}/runCase?case={case}&agent={agent}",
                max_frame_size=max_frame_size, enable_compression=True,
                ssl_context=ssl_context)
        except Exception as exc:  # noqa: BLE001 - any failure is the case's result
            print(f"echo_client: case {case}: connect failed: {exc!r}", flush=True)
            continue
        try:
            await asyncio.wait_for(transport.wait_disconnected(), case_timeout)
        except asyncio.TimeoutError:
            problems += 1
            print(f"echo_client: case {case}: still connected after {case_timeout} s, "
                  "disconnecting", flush=True)
            transport.disconnect()
        except Exception as exc:  # noqa: BLE001 - re-raised listener error; go on
            print(f"echo_client: case {case}: {exc!r}", flush=True)
        print(f"echo_client: case {case} done in {time.monotonic() - started:.2f} s",
              flush=True)

    transport, _ = await ws_connect(WSListener, f"{url}/updateReports?agent={agent}",
                                  ssl_context=ssl_context)
    await transport.wait_disconnected()
    print("echo_client: reports updated", flush=True)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    loop_name = install_loop(args.loop)
    import picows
    print(f"echo_client: picows {getattr(picows, '__version__', '?')} from "
          f"{picows.__file__}, {loop_name} loop", flush=True)
    try:
        return asyncio.run(run(args.url, args.agent, args.max_frame_size, args.case_timeout,
                               client_ssl_context(args.url, args.ca_file)))
    except KeyboardInterrupt:  # the runner stops a testee that overran its time
        print("echo_client: interrupted", flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())

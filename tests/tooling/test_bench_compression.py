"""benchmarks/compression.py and _quotes.py: the messages and the wire tap
(no benchmark is run)."""
from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))

import compression  # noqa: E402 (after the sys.path line)


def test_messages_are_deterministic_distinct_json_of_about_the_size():
    messages = compression.make_messages(50, 2048)
    assert messages == compression.make_messages(50, 2048)
    assert len(set(messages)) == 50
    for m in messages:
        assert 1800 < len(m) <= 2048
        doc = json.loads(m)
        assert doc["type"] == "quotes" and len(doc["data"]) > 5
        assert set(doc["data"][0]) == {"type", "symbol", "bid", "ask", "bid_size",
                                       "ask_size", "ts"}


def test_payload_bytes_cycles_through_the_messages():
    sizes = [3, 5, 7]
    assert compression.payload_bytes(sizes, 0, 3) == 15
    assert compression.payload_bytes(sizes, 1, 2) == 5
    assert compression.payload_bytes(sizes, 2, 7) == 7 + 15 + 3
    assert compression.payload_bytes(sizes, 4, 4) == 0


def test_tap_counts_the_bytes_of_the_connection_to_the_port():
    with socket.create_server(("127.0.0.1", 0)) as listener, \
            socket.create_connection(listener.getsockname()) as client:
        server, _ = listener.accept()
        with server:
            port = listener.getsockname()[1]
            tap = compression.find_connected_socket(port)
            assert tap is not None
            try:
                before = compression.wire_bytes(tap)
                if before is None:  # a kernel without tcpi_bytes_sent (< 4.19)
                    return
                client.sendall(b"x" * 10000)
                got = 0
                while got < 10000:
                    got += len(server.recv(65536))
                server.sendall(b"y" * 300)
                assert client.recv(300)
                deadline = time.monotonic() + 5
                while compression.wire_bytes(tap)[1] - before[1] < 300:
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                after = compression.wire_bytes(tap)
                assert (after[0] - before[0], after[1] - before[1]) == (10000, 300)
            finally:
                tap.close()
        assert client.fileno() != -1  # the tap's close left the original open

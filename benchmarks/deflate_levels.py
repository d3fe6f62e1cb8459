"""Compression level against ratio and CPU, for choosing WSCompression's
default: 2 KiB JSON market quotes with fresh numbers in every message,
compressed as permessage-deflate does (raw deflate, sync flush, context
takeover), by zlib and, when installed, isal and zlib-ng.

    python benchmarks/deflate_levels.py [--messages 300] [--repeats 7]

Prints, per compressor and level, the best of ``--repeats`` timings in
microseconds per message (compressing only) and the compressed size over
the message size. Quote results with the command, machine and date.
"""
from __future__ import annotations

import argparse
import json
import random
import time
import zlib
from typing import Any, List, Tuple

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "AVAXUSDT",
           "LINKUSDT"]


def quote_messages(n: int, size: int = 2048, seed: int = 1) -> List[bytes]:
    """`n` JSON messages of at least `size` bytes: lists of quotes."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        quotes: List[dict] = []
        while True:
            quotes.append({"s": rnd.choice(SYMBOLS), "b": round(rnd.uniform(100, 70000), 2),
                           "a": round(rnd.uniform(100, 70000), 2),
                           "bq": round(rnd.uniform(0, 50), 4), "aq": round(rnd.uniform(0, 50), 4),
                           "t": 1764600000000 + rnd.randrange(10 ** 6),
                           "u": rnd.randrange(10 ** 9)})
            message = json.dumps({"stream": "quotes", "data": quotes}).encode()
            if len(message) >= size:
                out.append(message)
                break
    return out


def compressors() -> List[Tuple[str, Any, List[int]]]:
    found: List[Tuple[str, Any, List[int]]] = [("zlib", zlib, [1, 2, 3, 4, 6, 9])]
    try:
        from isal import isal_zlib
        found.append(("isal", isal_zlib, [0, 1, 2, 3]))
    except ImportError:
        pass
    try:
        from zlib_ng import zlib_ng
        found.append(("zlib-ng", zlib_ng, [1, 2, 3, 6]))
    except ImportError:
        pass
    return found


def measure(module: Any, level: int, messages: List[bytes], repeats: int) -> Tuple[float, float]:
    best = float("inf")
    for _ in range(repeats):
        c = module.compressobj(level, module.DEFLATED, -15)
        t0 = time.perf_counter()
        for m in messages:
            c.compress(m)
            c.flush(module.Z_SYNC_FLUSH)
        best = min(best, (time.perf_counter() - t0) / len(messages))
    c = module.compressobj(level, module.DEFLATED, -15)
    # Check what the receiver sees: zlib inflates every message.
    d = zlib.decompressobj(-15)
    size = 0
    for m in messages:
        out = c.compress(m) + c.flush(module.Z_SYNC_FLUSH)
        assert d.decompress(out) == m
        size += len(out) - 4
    return best * 1e6, size / sum(map(len, messages))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    messages = quote_messages(args.messages)
    average = sum(map(len, messages)) / len(messages)
    print(f"{len(messages)} messages of {average:.0f} B on average; best of {args.repeats}")
    print("| compressor | level | us/message | ratio |")
    print("| --- | --: | --: | --: |")
    for name, module, levels in compressors():
        for level in levels:
            us, ratio = measure(module, level, messages, args.repeats)
            print(f"| {name} | {level} | {us:.1f} | {ratio:.3f} |", flush=True)


if __name__ == "__main__":
    main()

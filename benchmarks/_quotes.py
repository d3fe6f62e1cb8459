"""Market quotes for the benchmarks that send JSON (compression.py,
json_send.py): dicts with fresh numbers from a seeded RNG, so every process
that asks for them gets the same ones."""
from __future__ import annotations

import random
from collections.abc import Iterator

SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD", "DOGE-USD", "AVAX-USD",
           "DOT-USD", "LINK-USD", "LTC-USD", "BCH-USD", "ATOM-USD", "NEAR-USD", "APT-USD",
           "ARB-USD", "OP-USD", "FIL-USD", "ETC-USD", "XLM-USD", "UNI-USD")


def quotes(seed: int = 16) -> Iterator[dict]:
    """An endless stream of quotes: ``{"type": "quote", "symbol", "bid", "ask",
    "bid_size", "ask_size", "ts"}``, each symbol's price on a random walk,
    the timestamp (ms) going up a few ms at a time."""
    rnd = random.Random(seed)
    mids = {s: 10 ** rnd.uniform(-1.0, 4.8) for s in SYMBOLS}  # 0.1 .. 63,000
    ts = 1_764_547_200_000
    while True:
        sym = rnd.choice(SYMBOLS)
        mid = mids[sym] = mids[sym] * (1.0 + rnd.gauss(0.0, 0.0004))
        spread = mid * rnd.uniform(0.00001, 0.0004)
        digits = 2 if mid > 10 else 5
        ts += rnd.randint(1, 40)
        yield {"type": "quote", "symbol": sym, "bid": round(mid - spread / 2, digits),
               "ask": round(mid + spread / 2, digits),
               "bid_size": round(rnd.expovariate(0.2), 4),
               "ask_size": round(rnd.expovariate(0.2), 4), "ts": ts}

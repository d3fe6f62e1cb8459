"""Add the outcome seeds to fuzz/corpus/<target>/.

Random inputs (a fixed random seed, so the result is reproducible) are run
through each target, and a few inputs of every distinct outcome are kept:
each violation and close code for the frame parser, each HTTP status for the
handshake parsers. libFuzzer starts from these instead of from nothing.

The rest of the committed corpus is what fuzzing found, minimised with
libFuzzer's merge (`run.py --keep-corpus`, then for each target
`fuzz/fuzz_<target>.py -merge=1 NEW_DIR fuzz/corpus/<target>` and replace the
directory with NEW_DIR, then run this script again).

Run: python fuzz/make_corpus.py [TARGET...]   (needs atheris and picows importable)
"""
from __future__ import annotations

import hashlib
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import frames  # noqa: E402
import http_targets  # noqa: E402
import inflater  # noqa: E402

PER_OUTCOME = 2
SAMPLES = 6000
TARGETS = {
    "frames_server": lambda data: frames.one_input(data, is_client=False),
    "frames_client": lambda data: frames.one_input(data, is_client=True),
    "upgrade_request": http_targets.upgrade_request_input,
    "upgrade_response": http_targets.upgrade_response_input,
    "server_handshake": http_targets.server_handshake_input,
    "client_handshake": http_targets.client_handshake_input,
    "inflater": inflater.one_input,
}
# Inputs built by hand, for targets whose interesting inputs random bytes
# rarely hit (valid deflate streams).
HAND_SEEDS = {
    "inflater": inflater.hand_seeds,
}


def main() -> None:
    # Targets named on the command line, else all.
    for name, target in TARGETS.items():
        if sys.argv[1:] and name not in sys.argv[1:]:
            continue
        rng = random.Random(f"picows-{name}")
        kept: dict = {}
        for _ in range(SAMPLES):
            size = rng.choice([8, 32, 64, 200, 600, 2000])
            data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, size)))
            label = target(data)
            if len(kept.setdefault(label, [])) < PER_OUTCOME:
                kept[label].append(data)
        out = os.path.join(HERE, "corpus", name)
        os.makedirs(out, exist_ok=True)
        count = 0
        if name in HAND_SEEDS:
            kept["hand"] = list(HAND_SEEDS[name]().values())
        for inputs in kept.values():
            for data in inputs:
                path = os.path.join(out, hashlib.sha1(data).hexdigest()[:16])
                with open(path, "wb") as f:
                    f.write(data)
                count += 1
        print(f"{name}: {count} seeds, {len(kept)} outcomes")


if __name__ == "__main__":
    main()

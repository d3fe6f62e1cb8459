"""Run the websockets project's asyncio tests against picows.websockets.

    python tests/compat/run_websockets_suite.py [--source DIR] [--verbose] [FILE ...]

Steps:

1. Get websockets' source for the installed version: ``pip download
   --no-deps --no-binary :all: websockets==<version>`` and unpack it. Recent
   sdists prune ``tests/`` (their MANIFEST.in says ``prune tests``); then the
   GitHub archive of the tag is tried, and ``--source DIR`` takes a checkout
   (or any directory holding ``tests/asyncio/``) instead.
2. Copy its ``tests/`` into a scratch directory with a ``conftest.py`` that
   installs ``tests/compat/websockets_shim.py``: ``websockets.asyncio.client``,
   ``.server``, ``.connection``, ``.router`` and ``websockets.exceptions`` are
   picows.websockets; everything else is the real websockets.
3. Run each ``tests/asyncio/test_*.py`` with pytest (``PICOWS_LOOP_TLS=1``,
   ``WEBSOCKETS_TESTS_TIMEOUT_FACTOR=10`` unless set) and print, per file, how
   many tests pass, fail, error and are skipped (``--verbose``: the names of
   those that do not pass, with the first line of the reason).

Not part of CI: the results, and why the rest fails, are in
docs/websockets-compat.md.
"""
from __future__ import annotations

import argparse
import glob
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))

CONFTEST = '''\
import os
import sys

sys.path.insert(0, {here!r})
sys.path.insert(0, {root!r})
import websockets_shim  # noqa: E402,F401  (installs the aliases)
'''


def fetch_source(version: str, workdir: str) -> str:
    """A directory with websockets' tests/ for `version`."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--no-binary", ":all:", f"websockets=={version}", "-d", workdir],
                   check=True)
    (archive,) = glob.glob(os.path.join(workdir, f"websockets-{version}.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(workdir)
    source = os.path.join(workdir, f"websockets-{version}")
    if os.path.isdir(os.path.join(source, "tests", "asyncio")):
        return source
    print(f"websockets-{version}.tar.gz has no tests/ (pruned by its MANIFEST.in); "
          "trying the GitHub archive of the tag", file=sys.stderr)
    url = (f"https://github.com/python-websockets/websockets/archive/refs/tags/"
           f"{version}.tar.gz")
    target = os.path.join(workdir, "github.tar.gz")
    try:
        urllib.request.urlretrieve(url, target)
    except OSError as exc:
        raise SystemExit(f"cannot fetch {url}: {exc}\n"
                         "pass --source with a checkout of python-websockets/websockets "
                         f"at tag {version}") from None
    with tarfile.open(target) as tar:
        tar.extractall(os.path.join(workdir, "github"))
    (source,) = glob.glob(os.path.join(workdir, "github", "websockets-*"))
    return source


def prepare(source: str, workdir: str) -> str:
    suite = os.path.join(workdir, "suite")
    shutil.copytree(os.path.join(source, "tests"), os.path.join(suite, "tests"))
    with open(os.path.join(suite, "conftest.py"), "w") as f:
        f.write(CONFTEST.format(here=HERE, root=REPO_ROOT))
    with open(os.path.join(suite, "pytest.ini"), "w") as f:
        f.write("[pytest]\n")  # keep the repository's pytest settings out
    return suite


def run_file(suite: str, path: str) -> dict:
    report = os.path.join(suite, os.path.basename(path) + ".xml")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO_ROOT, suite]))
    # A loaded machine: websockets' tests scale their MS unit by this factor.
    env.setdefault("WEBSOCKETS_TESTS_TIMEOUT_FACTOR", "10")
    # Their helper get_uri() tells ws:// from wss:// by the asyncio.Server's
    # private _ssl_context, which is None when picows does TLS itself.
    env.setdefault("PICOWS_LOOP_TLS", "1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rN",
         "--timeout=60", f"--junitxml={report}", path],
        cwd=suite, env=env, capture_output=True, text=True)
    result = {"file": path, "passed": 0, "failed": 0, "errors": 0, "skipped": 0,
              "problems": [], "output": proc.stdout[-3000:] + proc.stderr[-3000:]}
    if not os.path.exists(report):
        result["errors"] = 1
        result["problems"].append(("(collection)", proc.stdout.strip().splitlines()[-1:]))
        return result
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name", "?")
        outcome = "passed"
        message = ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "errors", "skipped": "skipped"}[child.tag]
                message = (child.get("message") or "").splitlines()[:1]
                break
        result[outcome] += 1
        if outcome in ("failed", "errors"):
            result["problems"].append((name, message))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*",
                        help="test files under tests/asyncio (default: all)")
    parser.add_argument("--source", help="a websockets checkout (holding tests/asyncio/)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args()
    version = importlib.metadata.version("websockets")
    workdir = tempfile.mkdtemp(prefix="picows-compat-")
    try:
        source = args.source or fetch_source(version, workdir)
        suite = prepare(source, workdir)
        files = args.files or sorted(
            os.path.basename(p) for p in glob.glob(os.path.join(suite, "tests", "asyncio",
                                                                "test_*.py")))
        print(f"websockets {version} asyncio tests against picows.websockets\n")
        print("| file | passed | failed | errors | skipped |")
        print("| --- | --: | --: | --: | --: |")
        results = []
        for name in files:
            result = run_file(suite, os.path.join("tests", "asyncio", name))
            results.append(result)
            print(f"| {name} | {result['passed']} | {result['failed']} | "
                  f"{result['errors']} | {result['skipped']} |", flush=True)
        if args.verbose:
            for result in results:
                print(f"\n## {result['file']}")
                for name, message in result["problems"]:
                    print(f"- {name}: {' '.join(message)[:200]}")
    finally:
        if args.keep:
            print(f"\nscratch directory: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

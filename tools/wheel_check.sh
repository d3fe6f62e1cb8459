#!/usr/bin/env bash
# tox -e wheel, after the sdist and the repaired wheel are built: install the
# manylinux wheel in a fresh venv and run the tests against it with no C
# compiler reachable.
#
#   tools/wheel_check.sh WHEEL_DIR WORK_DIR [pytest paths and options...]
#
# - The venv gets the wheel and the test dependencies, binary wheels only.
# - The tests run from a copy of tests/ and examples/ in WORK_DIR, so the
#   checkout's picows/ (and any in-place build there) cannot be imported; the
#   run fails unless picows.picows comes from the venv.
# - CC, CXX and LDSHARED are unset and stubs that fail shadow cc, gcc, c++,
#   clang and the linker in PATH: anything that tries to compile fails.
#   The Cython example's tests (tests/integration/test_examples.py, 29 with
#   the parametrisations) build it, so they need a compiler: deselected
#   (-k "not cython"). `tox -e wheel -- tests/unit tests/integration` runs
#   the rest of both (2,863 tests, about 3.5 min here).
set -euo pipefail
wheel_dir=$1 work=$2
shift 2
repo=$(cd "$(dirname "$0")/.." && pwd)
wheels=("$wheel_dir"/picows-*manylinux*.whl)
[ -f "${wheels[0]}" ] || { echo "no manylinux wheel in $wheel_dir" >&2; exit 2; }
echo "== testing ${wheels[0]##*/}"

rm -rf "$work"
mkdir -p "$work/nocc"
python -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary :all: \
    "${wheels[0]}" "pytest>=8" "pytest-asyncio>=1.4" pytest-timeout trustme "websockets>=13" \
    uvloop psutil "python-socks>=3.2"

cp -r "$repo/tests" "$repo/examples" "$repo/pyproject.toml" "$work/"
find "$work/tests" "$work/examples" -name '__pycache__' -prune -exec rm -rf {} +
for c in cc gcc c++ g++ clang clang++ ld x86_64-linux-gnu-gcc aarch64-linux-gnu-gcc; do
    printf '#!/bin/sh\necho "no compiler in this test: $0" >&2\nexit 1\n' > "$work/nocc/$c"
    chmod +x "$work/nocc/$c"
done

cd "$work"
unset CC CXX LDSHARED
export PATH="$work/nocc:$PATH"
if gcc --version >/dev/null 2>&1; then
    echo "a compiler is still reachable" >&2
    exit 2
fi
"$work/venv/bin/python" - <<'PY'
import sys
import picows.picows as m
assert m.__file__.startswith(sys.prefix), f"picows imported from {m.__file__}, not the venv"
print("== picows from", m.__file__)
PY
exec "$work/venv/bin/python" -m pytest -p no:cacheprovider --timeout=300 -k "not cython" "$@"

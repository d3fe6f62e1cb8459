#!/usr/bin/env bash
# Install Autobahn|Testsuite's wstest (autobahntestsuite 25.10.1) for the
# native conformance backend.
#
# wstest runs only on Python 2.7.  Debian bookworm has no python2.7 package,
# so it is taken from bullseye, using a copy of this machine's own apt source
# with the suite names changed (no mirror host is written here).  pip for 2.7
# is bootstrapped from its own wheel, downloaded with the Python 3 pip, into a
# user-site prefix that is kept as a cache: a second run only checks it.
#
#   PICOWS_WSTEST_PREFIX  where wstest goes (default ~/.cache/picows-wstest);
#                         `python -m conformance` looks in the same place.
#   PICOWS_PYTHON2        the Python 2.7 interpreter (default /usr/bin/python2.7;
#                         not `python2.7` from PATH, which may be a pyenv shim
#                         that does not work).
#
# Idempotent; safe to run on every `tox -e conformance`.
set -euo pipefail

PREFIX="${PICOWS_WSTEST_PREFIX:-${HOME:-/root}/.cache/picows-wstest}"
PY2="${PICOWS_PYTHON2:-/usr/bin/python2.7}"
PY3="${PICOWS_PYTHON3:-$(command -v python3 || command -v python)}"
WSTEST_VERSION="25.10.1"
PIP_VERSION="20.3.4"
STAMP="$PREFIX/.installed-autobahntestsuite-$WSTEST_VERSION"

log() { echo "install_wstest: $*"; }

wstest_works() {
    [ -x "$PY2" ] && [ -f "$PREFIX/bin/wstest" ] &&
        PYTHONUSERBASE="$PREFIX" "$PY2" "$PREFIX/bin/wstest" --help >/dev/null 2>&1
}

if [ -f "$STAMP" ] && wstest_works; then
    log "wstest $WSTEST_VERSION already installed in $PREFIX"
    exit 0
fi

# 1. Python 2.7 from bullseye.
if ! "$PY2" --version >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        log "$PY2 is missing and this is not root: install python2.7 and" \
            "libpython2.7-dev yourself (or set PICOWS_PYTHON2), then rerun"
        exit 1
    fi
    src=/etc/apt/sources.list.d/debian.sources
    dst=/etc/apt/sources.list.d/picows-bullseye.sources
    if [ ! -f "$dst" ]; then
        if [ ! -f "$src" ]; then
            log "no $src to copy a bullseye source from"
            exit 1
        fi
        log "adding a bullseye apt source (copy of $src) for python2.7"
        # bookworm-security -> bullseye-security, bookworm-updates ->
        # bullseye-updates, bookworm -> bullseye: the same mirrors.
        sed -e 's/\bbookworm\b/bullseye/g' "$src" > "$dst"
    fi
    # Bullseye only for what bookworm lacks: never replace bookworm packages.
    for suite in bullseye bullseye-updates bullseye-security; do
        printf 'Package: *\nPin: release n=%s\nPin-Priority: 100\n\n' "$suite"
    done > /etc/apt/preferences.d/picows-bullseye
    log "apt-get install python2.7 libpython2.7-dev"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq python2.7 libpython2.7-dev >/dev/null
    "$PY2" --version
fi

mkdir -p "$PREFIX"
export PYTHONUSERBASE="$PREFIX"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_PYTHON_VERSION_WARNING=1

# 2 + 3. pip for Python 2.7, bootstrapped from its own wheel.
if ! "$PY2" -m pip --version >/dev/null 2>&1; then
    wheels="$PREFIX/wheels"
    mkdir -p "$wheels"
    whl="$wheels/pip-$PIP_VERSION-py2.py3-none-any.whl"
    if [ ! -f "$whl" ]; then
        log "downloading pip $PIP_VERSION for Python 2.7"
        "$PY3" -m pip download -q --no-deps --only-binary=:all: \
            --python-version 2.7 -d "$wheels" "pip==$PIP_VERSION" 2>&1 |
            { grep -v -e 'is ignored: it is neither' || true; }
    fi
    log "bootstrapping pip $PIP_VERSION into $PREFIX"
    "$PY2" "$whl/pip" install -q --user --no-warn-script-location "$whl" 2>&1 |
        { grep -v -e 'is ignored: it is neither' -e '^DEPRECATION: Python 2.7' || true; }
fi

# pip for 2.7 warns about every extra index of this machine's pip config and
# about Python 2's end of life: drop those lines, keep errors.
pip2() {
    "$PY2" -m pip "$@" 2>&1 |
        { grep -v -e 'is ignored: it is neither' -e '^DEPRECATION: Python 2.7' || true; }
}

# 4. Build tools (a source build of autobahn's dependencies needs them;
#    autobahntestsuite then pins setuptools back to 44.0.0 itself).
log "installing setuptools, wheel, autobahntestsuite $WSTEST_VERSION into $PREFIX"
if ! "$PY2" -c "import setuptools, wheel" >/dev/null 2>&1; then
    pip2 install -q --user --no-warn-script-location \
        "setuptools==44.1.1" "wheel==0.37.1"
fi

# 5. wstest.
pip2 install -q --user --no-warn-script-location \
    "autobahntestsuite==$WSTEST_VERSION"

if ! wstest_works; then
    log "wstest does not run; try: PYTHONUSERBASE=$PREFIX $PY2 $PREFIX/bin/wstest --help"
    exit 1
fi
touch "$STAMP"
log "wstest $WSTEST_VERSION ready: PYTHONUSERBASE=$PREFIX $PY2 $PREFIX/bin/wstest"

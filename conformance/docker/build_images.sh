#!/usr/bin/env bash
# Build stand-ins for the two images the docker backend and docker-compose.yml
# use, without Docker Hub, from Debian root file systems:
#
#   crossbario/autobahn-testsuite:25.10.1  bullseye + python2.7 + autobahntestsuite 25.10.1
#                                          (wstest on PATH, like the real image)
#   python:3.11-bookworm                   bookworm + python3.11 (python, pip on PATH),
#                                          gcc and zlib headers to build picows
#
# For hosts with a Docker engine that cannot reach Docker Hub (a CI machine
# with a package mirror and PyPI only). Each image is a `debootstrap
# --variant=minbase` tree from this machine's Debian mirror, with what the
# image needs installed in a chroot, this machine's CA bundle and pip
# settings copied in (so pip inside works as it does here), then imported
# with `docker import`. Both are built at once. See conformance/README.md.
#
#   bash conformance/docker/build_images.sh [--force] [autobahn] [python]
#
#   --force                 rebuild an image that already exists
#   PICOWS_DEBIAN_MIRROR    the mirror (default: the first Debian mirror in
#                           /etc/apt/sources.list.d/*.sources or sources.list)
#   PICOWS_IMAGE_WORKDIR    where the root file systems are built (default
#                           /var/tmp/picows-images; removed after import)
#
# Needs root (debootstrap, chroot), debootstrap and a running Docker engine.
# An image that is already there is kept: a real one pulled from Docker Hub
# is never replaced by a stand-in without --force.
set -euo pipefail

AUTOBAHN_IMAGE="crossbario/autobahn-testsuite:25.10.1"
PYTHON_IMAGE="python:3.11-bookworm"
WSTEST_VERSION="25.10.1"
PIP2_VERSION="20.3.4"
WORKDIR="${PICOWS_IMAGE_WORKDIR:-/var/tmp/picows-images}"
PY3="${PICOWS_PYTHON3:-$(command -v python3 || command -v python)}"
LABEL="org.picows.standin"

log() { echo "build_images: $*"; }
die() { log "$*" >&2; exit 1; }

force=0
wanted=()
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        autobahn|python) wanted+=("$arg") ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $arg (--force, autobahn, python)" ;;
    esac
done
[ ${#wanted[@]} -gt 0 ] || wanted=(autobahn python)

[ "$(id -u)" = 0 ] || die "needs root (debootstrap and chroot)"
command -v debootstrap >/dev/null || die "no debootstrap: apt-get install debootstrap"
command -v docker >/dev/null || die "no docker client: apt-get install docker.io"
docker info >/dev/null 2>&1 || die "no Docker engine answers (start dockerd)"

# ------------------------------------------------------------- the mirror
# The first URI of a stanza (deb822) or line (one-line format) whose suites
# are a Debian release ("bookworm", "bullseye", ...), not -security/-updates.
find_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk 'BEGIN { RS = ""; FS = "\n" }
             {
               uri = ""; ok = 0
               for (i = 1; i <= NF; i++) {
                 if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); uri = a[2] }
                 if ($i ~ /^Suites:/) {
                   n = split($i, s, /[ \t]+/)
                   for (j = 2; j <= n; j++)
                     if (s[j] ~ /^(bullseye|bookworm|trixie|stable|oldstable)$/) ok = 1
                 }
               }
               if (ok && uri != "") { print uri; exit }
             }' "$f")
        if [ -n "$uri" ]; then echo "$uri"; return; fi
    done
}
find_mirror_list() {
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" {
               for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) break
               if ($(i + 1) ~ /^(bullseye|bookworm|trixie|stable|oldstable)$/) { print $i; exit }
             }'
}
MIRROR="${PICOWS_DEBIAN_MIRROR:-$(find_mirror)}"
[ -n "$MIRROR" ] || MIRROR="$(find_mirror_list)"
[ -n "$MIRROR" ] || die "no Debian mirror in /etc/apt/sources.list*; set PICOWS_DEBIAN_MIRROR"

# ----------------------------------------------------- pip configuration
# This machine's effective pip settings (files and PIP_* variables) that
# make sense inside an image: the indexes reachable over the network, the
# trusted hosts, a proxy, the timeout. The CA bundle pip uses here goes in
# as the image's /etc/ssl/certs/ca-certificates.crt. Local paths (file://
# indexes, find-links, constraints) stay out: they do not exist in there.
CA_BUNDLE="$("$PY3" -m pip config list 2>/dev/null |
    sed -n "s/^[^=]*\.cert='\(.*\)'$/\1/p" | tail -n1)"
[ -n "$CA_BUNDLE" ] || CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
[ -f "$CA_BUNDLE" ] || CA_BUNDLE=""
image_pip_conf() {
    echo "# Written by picows conformance/docker/build_images.sh from the build host's pip settings."
    echo "[global]"
    [ -z "$CA_BUNDLE" ] || echo "cert = /etc/ssl/certs/ca-certificates.crt"
    "$PY3" -m pip config list 2>/dev/null | "$PY3" -c '
import re, sys
keep = {"index-url", "extra-index-url", "trusted-host", "proxy", "timeout",
        "default-timeout", "retries"}
seen = {}
for line in sys.stdin:
    m = re.match(r"^[^.]+\.([a-z-]+)=\x27(.*)\x27$", line.strip())
    if not m or m.group(1) not in keep:
        continue
    key, value = m.group(1), m.group(2)
    if key.endswith("index-url"):
        value = " ".join(u for u in value.split() if not u.startswith("file:"))
        if not value:
            continue
    seen["timeout" if key == "default-timeout" else key] = value
for key, value in seen.items():
    print(f"{key} = {value}")
'
    # A proxy in the environment is what pip would use here.
    local proxy="${HTTPS_PROXY:-${https_proxy:-}}"
    [ -z "$proxy" ] || echo "proxy = $proxy"
}

# ------------------------------------------------------------ the builds
in_root() {  # in_root DIR command...: run in the chroot, /proc mounted
    local dir="$1"
    shift
    chroot "$dir" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

prepare_root() {  # prepare_root SUITE DIR: debootstrap, resolv.conf, CA, pip.conf
    local suite="$1" dir="$2"
    rm -rf "$dir"
    mkdir -p "$dir"
    debootstrap --variant=minbase "$suite" "$dir" "$MIRROR" >"$dir.debootstrap.log" 2>&1 ||
        { tail -20 "$dir.debootstrap.log" >&2; die "debootstrap $suite failed (log: $dir.debootstrap.log)"; }
    mount -t proc proc "$dir/proc"
    cp -L /etc/resolv.conf "$dir/etc/resolv.conf"
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
        >"$dir/etc/apt/apt.conf.d/90picows"
}

finish_root() {  # finish_root DIR: CA bundle and pip.conf, clean, unmount
    local dir="$1"
    if [ -n "$CA_BUNDLE" ]; then
        mkdir -p "$dir/etc/ssl/certs"
        cp -L "$CA_BUNDLE" "$dir/etc/ssl/certs/ca-certificates.crt"
    fi
    image_pip_conf >"$dir/etc/pip.conf"
    in_root "$dir" apt-get clean
    rm -rf "$dir/var/lib/apt/lists/"* "$dir/root/.cache" "$dir/tmp/"*
    : >"$dir/etc/resolv.conf"
    umount "$dir/proc"
}

import_root() {  # import_root DIR IMAGE CHANGES...
    local dir="$1" image="$2"
    shift 2
    local changes=()
    for c in "$@" "LABEL $LABEL=1" "ENV LANG=C.UTF-8"; do changes+=(--change "$c"); done
    tar -C "$dir" -c . | docker import "${changes[@]}" - "$image" >/dev/null
    rm -rf "$dir" "$dir.debootstrap.log"
}

build_autobahn() {
    local dir="$WORKDIR/autobahn"
    prepare_root bullseye "$dir"
    trap 'umount "'"$dir"'/proc" 2>/dev/null || true' EXIT
    cp -L "${CA_BUNDLE:-/dev/null}" "$dir/tmp/ca.crt"
    in_root "$dir" apt-get update -qq
    # gcc and the headers: twisted, wsaccel and ujson build from source on 2.7.
    in_root "$dir" apt-get install -y -qq python2.7 libpython2.7-dev gcc libc6-dev \
        ca-certificates >/dev/null
    # pip for 2.7 from its own wheel, downloaded here with the Python 3 pip.
    "$PY3" -m pip download -q --no-deps --only-binary=:all: --python-version 2.7 \
        -d "$dir/tmp" "pip==$PIP2_VERSION" 2>&1 | { grep -v 'is ignored: it is neither' || true; }
    finish_pip="$(image_pip_conf)"
    printf '%s\n' "$finish_pip" >"$dir/etc/pip.conf"
    [ -z "$CA_BUNDLE" ] || cp -L "$CA_BUNDLE" "$dir/etc/ssl/certs/ca-certificates.crt"
    local whl="/tmp/pip-$PIP2_VERSION-py2.py3-none-any.whl"
    local quiet=(-q --no-cache-dir --disable-pip-version-check --no-python-version-warning)
    in_root "$dir" python2.7 "$whl/pip" install "${quiet[@]}" "$whl" 2>&1 |
        { grep -v -e '^DEPRECATION: Python 2.7' || true; }
    in_root "$dir" python2.7 -m pip install "${quiet[@]}" "setuptools==44.1.1" "wheel==0.37.1" 2>&1 |
        { grep -v -e '^DEPRECATION: Python 2.7' || true; }
    in_root "$dir" python2.7 -m pip install "${quiet[@]}" "autobahntestsuite==$WSTEST_VERSION" 2>&1 |
        { grep -v -e '^DEPRECATION: Python 2.7' || true; }
    in_root "$dir" wstest --autobahnversion >/dev/null || die "wstest does not run in the image"
    in_root "$dir" apt-get purge -y -qq --auto-remove gcc libc6-dev libpython2.7-dev >/dev/null
    in_root "$dir" wstest --autobahnversion >/dev/null || die "wstest does not run in the image"
    finish_root "$dir"
    trap - EXIT
    import_root "$dir" "$AUTOBAHN_IMAGE" \
        'CMD ["wstest", "--mode", "fuzzingserver", "--spec", "/config/fuzzingserver.json"]' \
        'EXPOSE 8080 9001' 'VOLUME ["/config", "/reports"]'
}

build_python() {
    local dir="$WORKDIR/python"
    prepare_root bookworm "$dir"
    trap 'umount "'"$dir"'/proc" 2>/dev/null || true' EXIT
    in_root "$dir" apt-get update -qq
    # python, pip and a compiler for picows (and its zlib headers), as the
    # official image has; python-is-python3 for the `python` command.
    in_root "$dir" apt-get install -y -qq python3 python3-pip python3-venv python3-dev \
        python-is-python3 gcc libc6-dev zlib1g-dev ca-certificates >/dev/null
    # The official image's pip installs into its Python; no PEP 668 marker.
    rm -f "$dir"/usr/lib/python3*/EXTERNALLY-MANAGED
    ln -sf /usr/bin/pip3 "$dir/usr/local/bin/pip"
    finish_root "$dir"
    trap - EXIT
    import_root "$dir" "$PYTHON_IMAGE" 'CMD ["python3"]'
}

mkdir -p "$WORKDIR"
pids=()
names=()
for which in "${wanted[@]}"; do
    image=$([ "$which" = autobahn ] && echo "$AUTOBAHN_IMAGE" || echo "$PYTHON_IMAGE")
    if [ "$force" = 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
        log "$image is there already (--force rebuilds it)"
        continue
    fi
    log "building $image from Debian ($MIRROR) ..."
    ( started=$SECONDS; "build_$which"; log "$image built in $((SECONDS - started)) s" ) \
        >"$WORKDIR/$which.log" 2>&1 &
    pids+=($!)
    names+=("$which")
done
status=0
for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
        tail -n1 "$WORKDIR/${names[$i]}.log"
    else
        status=1
        log "building the ${names[$i]} image failed; its log, $WORKDIR/${names[$i]}.log, ends:"
        tail -n 25 "$WORKDIR/${names[$i]}.log" >&2
    fi
done
exit $status

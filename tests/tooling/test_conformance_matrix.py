"""The conformance matrix's pieces: wss:// specs and certificates (--tls),
the testees over TLS against a real peer, and --gate-only on reports that
something else (docker-compose) wrote."""
import asyncio
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after site-packages: an installed picows still wins

from conformance import gate, run  # noqa: E402 (after the sys.path line)

pytest.importorskip("trustme")


# ------------------------------------------------------------------- specs

def test_plain_specs_are_the_committed_ones():
    for direction in ("server", "client"):
        spec = run.derive_spec(direction, ["1.1.1"], "/out")
        committed = run.load_spec(direction)
        assert {k: v for k, v in spec.items() if k not in ("cases", "outdir")} == \
            {k: v for k, v in committed.items() if k not in ("cases", "outdir")}


def test_tls_specs():
    tls = {"ca": "/r/ca.pem", "cert": "/r/chain.pem", "key": "/r/key.pem"}
    server = run.derive_spec("server", ["1.*"], "/out", tls)
    assert [s["url"] for s in server["servers"]] == ["wss://127.0.0.1:9002"]
    assert "key" not in server and "hostname" not in server["servers"][0]
    client = run.derive_spec("client", ["1.*"], "/out", tls)
    assert client["url"] == "wss://127.0.0.1:9001"
    assert (client["key"], client["cert"]) == ("/r/key.pem", "/r/chain.pem")
    # the ports the runner waits on do not change
    assert run.spec_port("server") == 9002 and run.spec_port("client") == 9001


def test_tls_files_make_a_working_pair(tmp_path):
    files = run.make_tls_files(tmp_path / "tls")
    assert set(files) == {"ca", "cert", "key"}
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(files["cert"], files["key"])
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(files["ca"]))
    assert client.check_hostname and client.verify_mode == ssl.CERT_REQUIRED


def test_tls_option_and_badge_guard():
    args = run.parse_args(["--tls", "--loop", "asyncio", "--cases", "1.*"])
    assert args.tls and args.loop == "asyncio"
    assert not run.parse_args([]).tls
    assert run.main(["--tls", "--update-badge", "--gate-only"]) == 2


# ------------------------------------------------ the testees over TLS

def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_echo_server_serves_wss(loop, tmp_path):
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    websockets_client = pytest.importorskip("websockets.asyncio.client")
    env, _ = run.testee_environment()
    files = run.make_tls_files(tmp_path / "tls")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "conformance" / "echo_server.py"), "--port", str(port),
         "--loop", loop, "--tls-cert", str(files["cert"]), "--tls-key", str(files["key"])],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        run.wait_port(port, 30, lambda: proc.poll() is None, "echo_server.py")

        async def echo():
            ctx = ssl.create_default_context(cafile=str(files["ca"]))
            async with websockets_client.connect(f"wss://127.0.0.1:{port}", ssl=ctx) as ws:
                await ws.send("over tls")
                return await ws.recv()

        assert asyncio.run(asyncio.wait_for(echo(), 30)) == "over tls"
    finally:
        run.stop_process(proc)
    out = proc.stdout.read()
    assert f"listening on wss://127.0.0.1:{port}/" in out and f"{loop} loop" in out
    assert proc.returncode == 0


def test_echo_client_trusts_only_the_given_ca(tmp_path):
    sys.path.insert(0, str(ROOT / "conformance"))
    try:
        import echo_client
    finally:
        sys.path.remove(str(ROOT / "conformance"))
    assert echo_client.client_ssl_context("ws://127.0.0.1:9001", None) is None
    files = run.make_tls_files(tmp_path / "tls")
    ctx = echo_client.client_ssl_context("wss://127.0.0.1:9001", str(files["ca"]))
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    assert len(ctx.get_ca_certs()) == 1


# ----------------------------------------------------------- --gate-only

def _index(cases, behavior="OK"):
    return {"picows": {c: {"behavior": behavior, "behaviorClose": "OK",
                           "reportfile": f"picows_case_{c.replace('.', '_')}.json"}
                       for c in cases}}


def _write_reports(root, direction, index):
    out = root / run.SPECS[direction][2]
    out.mkdir(parents=True)
    (out / "index.json").write_text(json.dumps(index))


def test_gate_only_passes_good_reports(tmp_path, capsys):
    all_cases, _ = gate.load_case_list()
    cases = gate.resolve(["1.1.*"], all_cases)
    for direction in ("server", "client"):
        _write_reports(tmp_path, direction, _index(cases))
    assert run.main(["--gate-only", "--reports", str(tmp_path), "--cases", "1.1.*"]) == 0
    assert "gate PASS" in capsys.readouterr().out
    assert "Gate: **PASS**" in (tmp_path / "summary.md").read_text()


def test_gate_only_fails_bad_or_missing_reports(tmp_path, capsys):
    all_cases, _ = gate.load_case_list()
    cases = gate.resolve(["1.1.*"], all_cases)
    _write_reports(tmp_path, "server", _index(cases, behavior="FAILED"))
    assert run.main(["--gate-only", "--reports", str(tmp_path), "--cases", "1.1.*",
                     "--direction", "server"]) == 1
    # no client reports at all: every case is missing
    assert run.main(["--gate-only", "--reports", str(tmp_path), "--cases", "1.1.*",
                     "--direction", "client"]) == 1
    assert "no " in capsys.readouterr().out


# --------------------------------------------------- CI and image scripts

@pytest.mark.parametrize("script", [
    "conformance/docker/build_images.sh", "conformance/docker/compose_smoke.sh",
    ".ci/conformance_extra.sh", ".ci/run"])
def test_scripts_parse(script):
    subprocess.run(["bash", "-n", str(ROOT / script)], check=True)


def test_build_images_finds_a_debian_mirror(tmp_path):
    """The mirror lookup of build_images.sh, on deb822 and one-line sources."""
    script = (ROOT / "conformance/docker/build_images.sh").read_text()
    funcs = script[script.index("find_mirror() {"):script.index('MIRROR="${PICOWS')]
    d822 = tmp_path / "sources.list.d"
    d822.mkdir()
    (d822 / "other.sources").write_text(
        "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n")
    (d822 / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n")
    funcs = funcs.replace("/etc/apt/sources.list.d", str(d822))
    r = subprocess.run(["bash", "-c", funcs + "\nfind_mirror"], capture_output=True,
                       text=True, check=True)
    assert r.stdout.strip() == "http://mirror.example/debian"
    listfile = tmp_path / "sources.list"
    listfile.write_text("deb [signed-by=/k.gpg] http://one.example/debian bullseye main\n")
    funcs = funcs.replace("/etc/apt/sources.list ", f"{listfile} ")
    r = subprocess.run(["bash", "-c", funcs + "\nfind_mirror_list"], capture_output=True,
                       text=True, check=True)
    assert r.stdout.strip() == "http://one.example/debian"


def test_image_pip_conf_keeps_only_what_works_in_an_image(tmp_path):
    """pip settings copied into the images: network indexes and the CA bundle,
    never this machine's local paths."""
    script = (ROOT / "conformance/docker/build_images.sh").read_text()
    start = script.index('CA_BUNDLE="$(')
    part = script[start:script.index("# ----", start)]
    fake_pip = tmp_path / "fakepy"
    fake_pip.write_text(
        "#!/bin/sh\n"
        "if [ \"$1\" = -m ]; then cat <<'X'\n"
        ":env:.cert='/etc/ssl/certs/ca-certificates.crt'\n"
        ":env:.default-timeout='180'\n"
        ":env:.find-links='/opt/wheels'\n"
        "global.constraint='/etc/xdg/pip/constraints.txt'\n"
        "global.extra-index-url='file:///opt/pypi/simple https://mirror.example/simple'\n"
        "X\nelse exec " + sys.executable + " \"$@\"; fi\n")
    fake_pip.chmod(0o755)
    env = dict(os.environ, PY3=str(fake_pip))
    env.pop("HTTPS_PROXY", None)
    env.pop("https_proxy", None)
    r = subprocess.run(["bash", "-c", 'PY3="$PY3"\n' + part + "\nimage_pip_conf"],
                       env=env, capture_output=True, text=True, check=True)
    conf = r.stdout
    assert "cert = /etc/ssl/certs/ca-certificates.crt" in conf
    assert "extra-index-url = https://mirror.example/simple" in conf
    assert "timeout = 180" in conf
    assert "file:" not in conf and "/opt/wheels" not in conf and "constraint" not in conf

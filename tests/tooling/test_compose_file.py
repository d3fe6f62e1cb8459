"""docker-compose.yml validates (``docker-compose config``, no engine needed)
and agrees with the wstest specs and the runner: image, mounts, ports."""
import json
import posixpath
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after site-packages: an installed picows still wins

from conformance import docker_backend, run  # noqa: E402 (after the sys.path line)

COMPOSE = shutil.which("docker-compose")
pytestmark = pytest.mark.skipif(COMPOSE is None, reason="docker-compose is not installed")

CONFIG_DIR = ROOT / "conformance" / "autobahn-config"
REPORTS_DIR = ROOT / "conformance" / "reports"


def _yaml_to_data(text):
    """``docker-compose config`` prints YAML (v1 knows no other format): parse
    it with PyYAML here, or else with the Python that runs docker-compose."""
    try:
        import yaml
    except ImportError:
        pass
    else:
        return yaml.safe_load(text)
    with open(COMPOSE, "rb") as f:
        first = f.readline().decode(errors="replace")
    if not first.startswith("#!") or "python" not in first:
        pytest.skip("cannot parse docker-compose's YAML output: no PyYAML here")
    interpreter = first[2:].split()
    code = "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))"
    r = subprocess.run(interpreter + ["-c", code], input=text, capture_output=True,
                       text=True, check=True)
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def config():
    base = [COMPOSE, "-f", str(ROOT / "docker-compose.yml")]
    r = subprocess.run(base + ["config"], cwd=ROOT, capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, f"docker-compose config failed:\n{r.stderr}"
    return _yaml_to_data(r.stdout)


def volumes(service):
    """{target: (source, read_only)} for short or long volume syntax."""
    out = {}
    for v in service.get("volumes", []):
        if isinstance(v, str):
            parts = v.split(":")
            source, target = parts[0], parts[1]
            ro = len(parts) > 2 and "ro" in parts[2].split(",")
        else:
            source, target, ro = v["source"], v["target"], bool(v.get("read_only"))
        out[target] = (Path(source), ro)
    return out


def command(service):
    cmd = service["command"]
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def test_services(config):
    assert set(config["services"]) == {"fuzzingserver", "fuzzingclient", "picows-echo-server"}


@pytest.mark.parametrize("name, mode, spec_file, direction", [
    ("fuzzingserver", "fuzzingserver", "fuzzingserver.json", "client"),
    ("fuzzingclient", "fuzzingclient", "fuzzingclient.json", "server"),
])
def test_wstest_services_match_specs_and_runner(config, name, mode, spec_file, direction):
    service = config["services"][name]
    assert service["image"] == docker_backend.IMAGE == "crossbario/autobahn-testsuite:25.10.1"
    assert service["network_mode"] == "host"
    vols = volumes(service)
    assert vols[docker_backend.CONFIG_MOUNT] == (CONFIG_DIR, True)
    assert vols[docker_backend.REPORTS_MOUNT][0] == REPORTS_DIR
    cmd = command(service)
    assert cmd[:3] == ["wstest", "-m", mode]
    spec_arg = cmd[cmd.index("-s") + 1]
    assert spec_arg == f"{docker_backend.CONFIG_MOUNT}/{spec_file}"
    # The committed spec is what the runner uses too.
    assert run.SPECS[direction][0] == spec_file
    spec = json.loads((CONFIG_DIR / spec_file).read_text())
    # Its relative outdir lands in the reports mount, in the runner's subdirectory.
    outdir = posixpath.normpath(posixpath.join(service.get("working_dir", "/"),
                                               spec["outdir"]))
    assert outdir == f"{docker_backend.REPORTS_MOUNT}/{run.SPECS[direction][2]}"
    # The runner's docker backend builds the same container.
    built = docker_backend.container_spec(mode, spec_arg, CONFIG_DIR, REPORTS_DIR)
    assert built["image"] == service["image"]
    assert built["network_mode"] == service["network_mode"]
    assert built["command"][:5] == cmd[:5]
    assert {v["bind"] for v in built["volumes"].values()} == set(vols)


def test_ports_match_specs(config):
    # The fuzzing server listens where fuzzingserver.json says (host network).
    spec = json.loads((CONFIG_DIR / "fuzzingserver.json").read_text())
    assert spec["url"] == "ws://127.0.0.1:9001" and run.spec_port("client") == 9001
    # The echo server listens where fuzzingclient.json points wstest.
    spec = json.loads((CONFIG_DIR / "fuzzingclient.json").read_text())
    assert spec["servers"][0]["url"] == "ws://127.0.0.1:9002"
    assert run.spec_port("server") == 9002
    echo = config["services"]["picows-echo-server"]
    assert echo["network_mode"] == "host"
    script = " ".join(command(echo))
    assert "conformance/echo_server.py --host 127.0.0.1 --port 9002" in script
    assert "9002" in " ".join(echo["healthcheck"]["test"])
    assert volumes(echo)["/src"] == (ROOT, True)


def test_fuzzingclient_waits_for_the_testee(config):
    depends = config["services"]["fuzzingclient"]["depends_on"]
    assert depends["picows-echo-server"]["condition"] == "service_healthy"

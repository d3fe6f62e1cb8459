"""The conformance runner's docker backend (conformance/docker_backend.py)
against a stand-in Docker client: the containers it asks for, no engine."""
import json
import sys
from pathlib import Path

import pytest

docker = pytest.importorskip("docker")

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after site-packages: an installed picows still wins

from conformance import docker_backend, run  # noqa: E402 (after the sys.path line)

IMAGE = "crossbario/autobahn-testsuite:25.10.1"


class FakeContainer:
    def __init__(self, client, kwargs, status_code=0, wait_error=None):
        self.client = client
        self.kwargs = kwargs
        self.status = "running"
        self.status_code = status_code
        self.wait_error = wait_error
        self.calls = []

    def wait(self, timeout=None):
        self.calls.append(("wait", timeout))
        if self.wait_error:
            raise self.wait_error
        self.status = "exited"
        return {"StatusCode": self.status_code}

    def logs(self):
        self.calls.append(("logs",))
        return b"wstest output\n"

    def stop(self, timeout=None):
        self.calls.append(("stop", timeout))
        self.status = "exited"

    def remove(self, force=False):
        self.calls.append(("remove", force))
        self.client.removed.append(self.kwargs.get("name"))

    def reload(self):
        self.calls.append(("reload",))


class FakeImages:
    def __init__(self, present, pull_error=None):
        self.present = present
        self.pull_error = pull_error
        self.pulled = []

    def get(self, name):
        if not self.present:
            raise docker.errors.ImageNotFound(name)
        return object()

    def pull(self, repository, tag=None):
        self.pulled.append((repository, tag))
        if self.pull_error:
            raise self.pull_error


class FakeContainers:
    def __init__(self, client, leftover=False, **container_options):
        self.client = client
        self.leftover = leftover
        self.options = container_options
        self.started = []

    def get(self, name):
        if not self.leftover:
            raise docker.errors.NotFound(name)
        return FakeContainer(self.client, {"name": name})

    def run(self, **kwargs):
        container = FakeContainer(self.client, kwargs, **self.options)
        self.started.append(container)
        return container


class FakeClient:
    def __init__(self, image_present=True, leftover=False, pull_error=None,
                 **container_options):
        self.pings = 0
        self.removed = []
        self.images = FakeImages(image_present, pull_error)
        self.containers = FakeContainers(self, leftover, **container_options)

    def ping(self):
        self.pings += 1
        return True


@pytest.fixture
def reports(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "logs").mkdir()
    return tmp_path


def backend_for(client, reports):
    return docker_backend.DockerBackend(client, reports_dir=reports)


# ------------------------------------------------------------ container specs

@pytest.mark.parametrize("mode", ["fuzzingclient", "fuzzingserver"])
def test_container_spec(mode, tmp_path):
    spec = docker_backend.container_spec(mode, f"/reports/config/{mode}.json",
                                         ROOT / "conformance" / "autobahn-config", tmp_path)
    assert spec["image"] == IMAGE == docker_backend.IMAGE
    assert spec["network_mode"] == "host"  # 127.0.0.1 in the specs is the host
    assert spec["detach"] is True
    assert spec["working_dir"] == "/"
    assert spec["volumes"] == {
        str((ROOT / "conformance" / "autobahn-config").resolve()):
            {"bind": "/config", "mode": "ro"},
        str(tmp_path.resolve()): {"bind": "/reports", "mode": "rw"},
    }
    cmd = spec["command"]
    assert cmd[:5] == ["wstest", "-m", mode, "-s", f"/reports/config/{mode}.json"]
    assert ("--webport" in cmd) == (mode == "fuzzingserver")
    assert "ports" not in spec  # host network: the spec's URL is the port


def test_container_spec_rejects_other_modes():
    with pytest.raises(ValueError):
        docker_backend.container_spec("echoserver", "/x.json")


# ------------------------------------------------------------------- backend

def test_check_pulls_the_pinned_image_only_when_missing(reports):
    client = FakeClient(image_present=False)
    assert IMAGE in backend_for(client, reports).check()
    assert client.pings == 1
    assert client.images.pulled == [("crossbario/autobahn-testsuite", "25.10.1")]
    client = FakeClient(image_present=True)
    backend_for(client, reports).check()
    assert client.images.pulled == []


def test_host_path_maps_reports_into_the_container(reports):
    backend = backend_for(FakeClient(), reports)
    assert backend.host_path(reports / "servers") == "/reports/servers"
    assert backend.host_path(reports / "config" / "x.json") == "/reports/config/x.json"


def test_derived_spec_points_wstest_at_the_mounts(reports):
    backend = backend_for(FakeClient(), reports)
    spec = run.derive_spec("server", ["1.*"], backend.host_path(reports / "servers"))
    assert spec["outdir"] == "/reports/servers"
    assert spec["cases"] == ["1.*"]
    assert spec["servers"] == [{"agent": "picows", "url": "ws://127.0.0.1:9002"}]


def test_run_fuzzingclient(reports):
    client = FakeClient(status_code=0)
    backend = backend_for(client, reports)
    spec = reports / "config" / "fuzzingclient.json"
    spec.write_text(json.dumps({}))
    logfile = reports / "logs" / "wstest-fuzzingclient.log"
    assert backend.run_fuzzingclient(spec, logfile, timeout=600) == 0
    (container,) = client.containers.started
    kw = container.kwargs
    assert kw["image"] == IMAGE
    assert kw["command"] == ["wstest", "-m", "fuzzingclient", "-s",
                             "/reports/config/fuzzingclient.json"]
    assert kw["volumes"][str(reports.resolve())] == {"bind": "/reports", "mode": "rw"}
    assert kw["network_mode"] == "host"
    assert ("wait", 600) in container.calls
    assert ("remove", True) in container.calls  # collected, then removed
    assert logfile.read_bytes() == b"wstest output\n"


def test_run_fuzzingclient_timeout_stops_the_container(reports):
    client = FakeClient(wait_error=TimeoutError("read timed out"))
    backend = backend_for(client, reports)
    logfile = reports / "logs" / "wstest-fuzzingclient.log"
    assert backend.run_fuzzingclient(reports / "config" / "fuzzingclient.json", logfile,
                                     timeout=1) == -1
    (container,) = client.containers.started
    assert ("stop", 5) in container.calls
    assert ("remove", True) in container.calls
    assert logfile.exists()


def test_leftover_container_is_removed_first(reports):
    client = FakeClient(leftover=True)
    backend = backend_for(client, reports)
    backend.run_fuzzingclient(reports / "config" / "fuzzingclient.json",
                              reports / "logs" / "x.log", timeout=5)
    assert client.removed[0] == "picows-autobahn-fuzzingclient"


def test_fuzzingserver_lifecycle(reports):
    client = FakeClient()
    backend = backend_for(client, reports)
    logfile = reports / "logs" / "wstest-fuzzingserver.log"
    handle = backend.start_fuzzingserver(reports / "config" / "fuzzingserver.json", logfile)
    assert handle.kwargs["command"] == ["wstest", "-m", "fuzzingserver", "-s",
                                        "/reports/config/fuzzingserver.json",
                                        "--webport", "0"]
    assert handle.kwargs["volumes"][
        str((ROOT / "conformance" / "autobahn-config").resolve())]["mode"] == "ro"
    assert backend.fuzzingserver_alive(handle)
    backend.stop_fuzzingserver(handle, logfile)
    assert ("stop", 5) in handle.calls and ("remove", True) in handle.calls
    assert not backend.fuzzingserver_alive(handle)
    assert logfile.read_bytes() == b"wstest output\n"


def test_auto_falls_back_to_native_without_an_engine(monkeypatch, reports):
    def no_engine(*args, **kwargs):
        raise docker.errors.DockerException("no engine")

    monkeypatch.setattr(docker, "from_env", no_engine)
    assert isinstance(run.choose_backend("auto", reports), run.NativeBackend)
    with pytest.raises(run.SetupError):
        run.choose_backend("docker", reports)


def test_auto_picks_docker_when_an_engine_answers(monkeypatch, reports):
    monkeypatch.setattr(docker, "from_env", lambda **kwargs: FakeClient())
    backend = run.choose_backend("auto", reports)
    assert isinstance(backend, docker_backend.DockerBackend)
    assert backend.reports_dir == reports.resolve()


# Docker Hub unreachable: docker's own words for a pull that cannot resolve it.
NO_HUB = docker.errors.APIError(
    "500 Server Error for http+docker://localhost/v1.41/images/create: Internal Server "
    'Error ("Get "https://registry-1.docker.io/v2/": dial tcp: lookup '
    'registry-1.docker.io: no such host")')


def test_check_says_how_to_build_a_stand_in_when_the_pull_fails(reports):
    client = FakeClient(image_present=False, pull_error=NO_HUB)
    with pytest.raises(docker_backend.ImageUnavailable) as err:
        backend_for(client, reports).check()
    message = str(err.value)
    assert IMAGE in message and "registry-1.docker.io" in message
    assert "conformance/docker/build_images.sh" in message
    assert "\n" not in message


def test_auto_falls_back_to_native_when_the_image_cannot_be_had(monkeypatch, reports, capsys):
    monkeypatch.setattr(docker, "from_env",
                        lambda **kwargs: FakeClient(image_present=False, pull_error=NO_HUB))
    assert isinstance(run.choose_backend("auto", reports), run.NativeBackend)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1  # one clear line, no traceback
    assert "cannot be pulled" in lines[0] and "using native wstest" in lines[0]
    assert "build_images.sh" in lines[0]
    with pytest.raises(run.SetupError, match="build_images.sh"):
        run.choose_backend("docker", reports)


def test_auto_checks_the_image_of_the_engine_it_picks(monkeypatch, reports):
    client = FakeClient(image_present=False)  # pullable
    monkeypatch.setattr(docker, "from_env", lambda **kwargs: client)
    assert isinstance(run.choose_backend("auto", reports), docker_backend.DockerBackend)
    assert client.images.pulled == [("crossbario/autobahn-testsuite", "25.10.1")]


def test_tls_spec_paths_are_the_containers(reports):
    backend = backend_for(FakeClient(), reports)
    files = run.make_tls_files(reports / "config" / "tls")
    in_container = {k: backend.host_path(v) for k, v in files.items()}
    spec = run.derive_spec("client", ["1.*"], "/reports/clients", in_container)
    assert spec["url"] == "wss://127.0.0.1:9001"
    assert spec["key"] == "/reports/config/tls/server-key.pem"
    assert spec["cert"] == "/reports/config/tls/server-chain.pem"

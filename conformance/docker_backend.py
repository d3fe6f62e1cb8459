"""The docker backend: wstest from the pinned crossbario/autobahn-testsuite image.

Driven with the Docker SDK for Python (the ``docker`` package).  The
containers use the host network, so the committed specs work unchanged:
the fuzzing client reaches our testee server on 127.0.0.1:9002 and our
testee client reaches the fuzzing server on 127.0.0.1:9001 (Linux; Docker
Desktop needs its host-networking option).  The specs the runner derives
and the reports live in conformance/reports, mounted at /reports; the
committed specs are mounted read-only at /config, as in docker-compose.yml.

:func:`container_spec` builds the ``containers.run`` arguments and is pure,
so tests/tooling/test_conformance_docker.py checks it against a stand-in client.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

IMAGE_REPO = "crossbario/autobahn-testsuite"
IMAGE_TAG = "25.10.1"
IMAGE = f"{IMAGE_REPO}:{IMAGE_TAG}"
CONFIG_MOUNT = "/config"
REPORTS_MOUNT = "/reports"
CONTAINER_PREFIX = "picows-autobahn-"

HERE = Path(__file__).resolve().parent
CONFIG_DIR = HERE / "autobahn-config"
REPORTS_DIR = HERE / "reports"


def container_spec(mode: str, spec_in_container: str, config_dir: Path = CONFIG_DIR,
                   reports_dir: Path = REPORTS_DIR) -> dict[str, Any]:
    """Keyword arguments for ``client.containers.run`` for one wstest mode."""
    if mode not in ("fuzzingclient", "fuzzingserver"):
        raise ValueError(f"unsupported wstest mode {mode!r}")
    command = ["wstest", "-m", mode, "-s", spec_in_container]
    if mode == "fuzzingserver":
        command += ["--webport", "0"]  # no report web server on 8080
    spec: dict[str, Any] = {
        "image": IMAGE,
        "command": command,
        "name": CONTAINER_PREFIX + mode,
        "volumes": {
            str(Path(config_dir).resolve()): {"bind": CONFIG_MOUNT, "mode": "ro"},
            str(Path(reports_dir).resolve()): {"bind": REPORTS_MOUNT, "mode": "rw"},
        },
        "working_dir": "/",
        "network_mode": "host",
        "detach": True,
        "labels": {"org.picows.conformance": mode},
    }
    if hasattr(os, "getuid"):
        # Reports then belong to whoever runs the gate, not to root.
        spec["user"] = f"{os.getuid()}:{os.getgid()}"
    return spec


class ImageUnavailable(RuntimeError):
    """The engine answers but the pinned image is neither here nor pullable."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class DockerBackend:
    """Runs wstest in containers; the runner's backend interface."""

    name = "docker"

    def __init__(self, client: Any, reports_dir: Path = REPORTS_DIR,
                 config_dir: Path = CONFIG_DIR):
        self.client = client
        self.reports_dir = Path(reports_dir).resolve()
        self.config_dir = Path(config_dir).resolve()

    @classmethod
    def from_env(cls, reports_dir: Path = REPORTS_DIR) -> DockerBackend:
        """A backend on the local engine; raises if none answers."""
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
        return cls(client, reports_dir)

    def check(self) -> str:
        """Engine up and the pinned image present (pulled if not).

        :raise ImageUnavailable: no image and the pull failed (no Docker Hub);
            its message says how to build a stand-in offline.
        """
        self.client.ping()
        try:
            self.client.images.get(IMAGE)
        except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound and kin
            try:
                self.client.images.pull(IMAGE_REPO, tag=IMAGE_TAG)
            except Exception as exc:  # noqa: BLE001 - APIError, ConnectionError, ...
                raise ImageUnavailable(
                    f"Docker image {IMAGE} is not here and cannot be pulled "
                    f"({_first_line(exc)}); without Docker Hub, build a stand-in with "
                    "bash conformance/docker/build_images.sh") from exc
        return f"image {IMAGE}"

    def host_path(self, path: Path) -> str:
        """A report path as the container sees it."""
        rel = Path(path).resolve().relative_to(self.reports_dir)
        return f"{REPORTS_MOUNT}/{rel.as_posix()}"

    def _run(self, mode: str, spec: Path) -> Any:
        name = CONTAINER_PREFIX + mode
        try:  # a leftover from an interrupted run
            self.client.containers.get(name).remove(force=True)
        except Exception:  # noqa: BLE001, S110 - docker.errors.NotFound: nothing to remove
            pass
        kwargs = container_spec(mode, self.host_path(spec), self.config_dir,
                                self.reports_dir)
        return self.client.containers.run(**kwargs)

    @staticmethod
    def _finish(container: Any, logfile: Path) -> None:
        try:
            Path(logfile).write_bytes(container.logs())
        finally:
            container.remove(force=True)

    def run_fuzzingclient(self, spec: Path, logfile: Path, timeout: float) -> int:
        container = self._run("fuzzingclient", spec)
        try:
            result = container.wait(timeout=timeout)
            return int(result.get("StatusCode", -1))
        except Exception:  # noqa: BLE001 - requests' ReadTimeout: still running
            container.stop(timeout=5)
            return -1
        finally:
            self._finish(container, logfile)

    def start_fuzzingserver(self, spec: Path, logfile: Path) -> Any:
        return self._run("fuzzingserver", spec)

    def fuzzingserver_alive(self, handle: Any) -> bool:
        handle.reload()
        return handle.status in ("created", "running")

    def stop_fuzzingserver(self, handle: Any, logfile: Path) -> None:
        try:
            handle.stop(timeout=5)
        finally:
            self._finish(handle, logfile)

"""Start a knevents function the way the image does: the entry point, only environment and $PORT."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from knevents.deploy import names

from tests.deploy import corpus


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def container_env(service: Mapping[str, Any]) -> dict[str, str]:
    """The literal environment of a rendered Knative Service's container."""
    container = service["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


@dataclass
class Running:
    """A function process started by :func:`running`."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path


@contextmanager
def started(
    service: Mapping[str, Any],
    config_map: Mapping[str, Any],
    tmp: Path,
    overrides: Mapping[str, str],
    port: int | None = None,
) -> Iterator[str]:
    """Run the function of a rendered Service locally; yields its base URL once /health answers 200.

    ``overrides`` may choose the server (``KNEVENTS_SERVER``); the image's default otherwise.
    """
    with running(service, config_map, tmp, overrides, port) as function:
        yield function.url


@contextmanager
def running(
    service: Mapping[str, Any],
    config_map: Mapping[str, Any],
    tmp: Path,
    overrides: Mapping[str, str],
    port: int | None = None,
) -> Iterator[Running]:
    """:func:`started`, yielding the process too (to signal it); stopped with SIGTERM at the end if still up."""
    tmp.mkdir(parents=True, exist_ok=True)
    spec_dir = tmp / "spec"
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec_file = spec_dir / names.SPEC_FILE
    spec_file.write_text(config_map["data"][names.SPEC_FILE])
    port = port or free_port()
    env = container_env(service)
    env.update(
        {
            "KNEVENTS_SPEC": str(spec_file),  # the ConfigMap "mount"
            "KNEVENTS_FUNCTIONS_DIR": str(corpus.REPO / "functions"),
            "PORT": str(port),
            # what Knative Serving injects into every revision's container
            "K_SERVICE": service["metadata"]["name"],
            "K_CONFIGURATION": service["metadata"]["name"],
            "K_REVISION": f"{service['metadata']['name']}-00001",
            "PATH": os.environ.get("PATH", ""),
            **overrides,
        }
    )
    log = (tmp / "function.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "knevents.deploy.entrypoint"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, url, tmp / "function.log")
        yield Running(url, proc, tmp / "function.log")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 90  # the cold start of a loaded CI box, not a speed claim
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"function exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"function did not become healthy:\n{log.read_text()}")

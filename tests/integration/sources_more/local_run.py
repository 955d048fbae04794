"""Run an upstream EventSource under ``knevents run`` with a sensor that posts the event's data to a sink.

The sensor's http trigger sends the whole event data (``dataKey`` = each top-level field) to the
tests/e2e harness sink, so a test sees exactly the fields a sensor gets from the bus.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.e2e import harness


def sensor_yaml(event_source: str, event_name: str, fields: Sequence[str], sink_url: str) -> str:
    """A Sensor depending on ``event_source/event_name`` whose http trigger posts ``{field: data.field}``."""
    payload = [{"src": {"dependencyName": "dep", "dataKey": f}, "dest": f} for f in fields]
    doc = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor", "metadata": {"name": f"{event_source}-sensor"},
        "spec": {
            "dependencies": [{"name": "dep", "eventSourceName": event_source, "eventName": event_name}],
            "triggers": [{"template": {"name": "to-sink", "http": {"url": f"{sink_url}/got", "payload": payload}},
                          "atLeastOnce": True}],
        },
    }
    return yaml.safe_dump(doc)


def probe(make: Callable[[int], object], sink: harness.Sink, every: float = 0.5) -> None:
    """Call ``make(n)`` until the sink got a request: the source is watching from then on."""
    for n in range(int(harness.WAIT / every)):
        make(n)
        if sink.received or _wait(sink, every):
            return
    raise AssertionError("the source never reported a probe")


def _wait(sink: harness.Sink, seconds: float) -> bool:
    try:
        sink.wait(1, timeout=seconds)
    except AssertionError:
        return False
    return True


def upstream_webhook(port: int) -> dict[str, Any]:
    """Argo's upstream ``event-sources/webhook.yaml`` (``webhook/example``) on ``port``."""
    from tests import upstream

    source = yaml.safe_load(upstream.example("event-sources", "webhook.yaml").read_text())
    source["spec"]["webhook"]["example"]["port"] = str(port)
    return dict(source)


def post(runner: harness.RunnerProcess, port: int, body: dict[str, Any], cwd: Path) -> None:
    """``knevents send`` a JSON body to the upstream webhook on ``port``."""
    import json

    sent = harness.cli(["send", "--url", f"http://127.0.0.1:{port}/example", "--data", json.dumps(body)],
                       runner.env, cwd)
    assert sent.returncode == 0, sent.stdout + sent.stderr


@contextmanager
def running(tmp_path: Path, event_source: dict[str, Any], sensor: str,
            env: dict[str, str] | None = None) -> Iterator[harness.RunnerProcess]:
    """``knevents run`` over the two manifests; killed (with its nats-server) at the end."""
    folder = tmp_path / "manifests"
    folder.mkdir(exist_ok=True)
    (folder / "eventsource.yaml").write_text(yaml.safe_dump(event_source))
    (folder / "sensor.yaml").write_text(sensor)
    runner = harness.RunnerProcess([folder], tmp_path / "state", harness.knevents_env(tmp_path, env))
    try:
        yield runner.start()
    finally:
        runner.kill()

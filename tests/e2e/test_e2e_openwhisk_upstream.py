"""Argo's upstream ``trigger-openwhisk.yaml`` Sensor in ``knevents run``, fed by Argo's upstream minio EventSource.

The sensor waits for ``minio``/``example``, so both upstream files run together. They are used as they are but
for what a local run needs: the EventSource's endpoint points at the ListenBucketNotification stand-in
(tests/fixtures/minio_listen.py); in the Sensor the ``openwhisk`` key is spelled ``openWhisk`` (the upstream
spelling stays a validation error), ``host`` points at the OpenWhisk REST API stand-in
(tests/fixtures/openwhisk_api.py), and an ``authToken`` is added: the upstream file has none, and OpenWhisk refuses
an invocation without credentials. The Secrets come from ``KNEVENTS_SECRET_*``, as in the other e2e tests.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import upstream
from tests.e2e import harness
from tests.fixtures.minio_listen import MinioListen
from tests.fixtures.openwhisk_api import KEY, UUID, OpenWhiskApi
from tests.unit.sources_hooks.hookkit import payload

_ROOT = upstream.root()
pytestmark = pytest.mark.skipif(_ROOT is None, reason=upstream.REASON)
MINIO_ACCESS, MINIO_SECRET = "minio-ow-access", "minio-ow-secret-key"


@pytest.fixture
def minio_server() -> Iterator[MinioListen]:
    server = MinioListen({"input"}, {MINIO_ACCESS: MINIO_SECRET}).start()
    yield server
    server.stop()


def _prepare(dest: Path, minio: str, openwhisk: str) -> None:
    assert _ROOT is not None
    dest.mkdir()
    source = yaml.safe_load((_ROOT / "examples" / "event-sources" / "minio.yaml").read_text())
    source["spec"]["minio"]["example"]["endpoint"] = minio
    sensor = yaml.safe_load((_ROOT / "examples" / "sensors" / "trigger-openwhisk.yaml").read_text())
    template = sensor["spec"]["triggers"][0]["template"]
    template["openWhisk"] = {**template.pop("openwhisk"), "host": openwhisk,
                             "authToken": {"name": "openwhisk-auth", "key": "token"}}
    (dest / "minio.yaml").write_text(yaml.safe_dump(source))
    (dest / "sensor.yaml").write_text(yaml.safe_dump(sensor))


def _object_created(key: str) -> dict[str, Any]:
    """MinIO's documented ``s3:ObjectCreated:Put`` record, for an object in the ``input`` bucket."""
    record: dict[str, Any] = json.loads(payload("minio-event-docs.json"))["Records"][0]
    record["s3"]["bucket"].update(name="input", arn="arn:aws:s3:::input")
    record["s3"]["object"]["key"] = key
    return record


def test_upstream_openwhisk_sensor_invokes_the_action_with_argos_request(
        tmp_path: Path, minio_server: MinioListen, openwhisk_api: OpenWhiskApi) -> None:
    _prepare(tmp_path / "m", minio_server.endpoint, openwhisk_api.url)
    env = harness.knevents_env(tmp_path, {
        "KNEVENTS_SECRET_ARTIFACTS_MINIO_ACCESSKEY": MINIO_ACCESS,
        "KNEVENTS_SECRET_ARTIFACTS_MINIO_SECRETKEY": MINIO_SECRET,
        "KNEVENTS_SECRET_OPENWHISK_AUTH_TOKEN": f"{UUID}:{KEY}",
    })
    runner = harness.RunnerProcess([tmp_path / "m"], tmp_path / "state", env).start()
    try:
        harness.poll(lambda: minio_server.listeners == 1, "the minio listener")
        assert minio_server.emit(_object_created("reports/q3.csv")) == 1
        [fired] = runner.wait_for(lambda r: r.get("tag") == "fired" and r.get("trigger") == "openwhisk-trigger",
                                  "the openwhisk-trigger firing")
        assert (fired["kind"], fired["status"], fired["dry_run"]) == ("openWhisk", 200, False), fired
        [(method, target, headers, body)] = openwhisk_api.requests  # one invocation, no retry
        # openwhisk-client-go's Actions.Invoke(actionName, payload, blocking=true, result=true) under the default
        # namespace "_" and version "v1", with the authToken as HTTP basic auth
        assert method == "POST"
        assert target == "/api/v1/namespaces/_/actions/hello?blocking=true&result=true"
        assert headers["authorization"] == "Basic " + base64.b64encode(f"{UUID}:{KEY}".encode()).decode()
        assert headers["content-type"] == "application/json"
        # the document Argo's ConstructPayload builds from the two payload parameters, sent as the JSON object
        # itself (Argo's Go client would wrap these bytes in a base64 JSON string; see docs/triggers.md)
        assert body == b'{"bucket":"input","type":"minio"}'
        assert openwhisk_api.invocations == [("_", "hello", {"blocking": ["true"], "result": ["true"]},
                                              {"bucket": "input", "type": "minio"})]
        assert KEY not in runner.output() and MINIO_SECRET not in runner.output()
        assert runner.stop() == 0
    finally:
        runner.kill()

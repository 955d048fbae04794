"""Argo's upstream slack, stripe, bitbucket, bitbucketserver, gerrit, storage-grid and minio EventSources in
``knevents run``: real-shaped requests (the providers' documented payloads) fire a Sensor with Argo's data.

The upstream files are used as they are; only ports, the MinIO endpoint (pointed at the ListenBucketNotification
stand-in) and the stripe file's stray ``namespace`` field (which Argo's own schema refuses) are changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml

from tests import upstream
from tests.e2e import harness
from tests.fixtures.minio_listen import MinioListen
from tests.unit.sources_hooks.hookkit import payload

_ROOT = upstream.root()
pytestmark = pytest.mark.skipif(_ROOT is None, reason=upstream.REASON)
SLACK_SECRET, BBS_SECRET = "slack-signing-secret-e2e", "bitbucketserver-hook-secret-e2e"
MINIO_ACCESS, MINIO_SECRET = "minio-e2e-access", "minio-e2e-secret-key"
# (EventSource, event, dataKey whose value the sink must get)
DEPENDENCIES = [
    ("slack", "example-insecure", "Data.text"),
    ("stripe", "example", "event.id"),
    ("bitbucket", "example", "body.push.changes.0.new.name"),
    ("bitbucketserver", "example", "body.changes.0.refId"),
    ("gerrit", "example", "body.change.project"),
    ("storage-grid", "example", "notification.Message.Records.0.s3.object.key"),
    ("minio", "example", "notification.0.s3.object.key"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sensor(sink: str) -> dict[str, object]:
    deps = [{"name": f"d{i}", "eventSourceName": es, "eventName": ev} for i, (es, ev, _) in enumerate(DEPENDENCIES)]
    triggers = [{"template": {"conditions": f"d{i}", "name": f"t{i}", "http": {
        "url": f"{sink}/{es}", "method": "POST", "headers": {"Content-Type": "application/json"},
        "payload": [{"src": {"dependencyName": f"d{i}", "dataKey": key}, "dest": "value"}]}}}
        for i, (es, _, key) in enumerate(DEPENDENCIES)]
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor", "metadata": {"name": "providers"},
            "spec": {"dependencies": deps, "triggers": triggers}}


def _prepare(dest: Path, ports: dict[str, int], minio: str, sink: str) -> None:
    assert _ROOT is not None
    dest.mkdir()
    for name in ("slack", "stripe", "bitbucket", "bitbucketserver", "gerrit", "storage-grid", "minio"):
        doc = yaml.safe_load((_ROOT / "examples" / "event-sources" / f"{name}.yaml").read_text())
        spec = doc["spec"]
        spec.pop("service", None)
        for entries in spec.values():
            for entry in entries.values():
                if "webhook" in entry:
                    entry["webhook"]["port"] = str(ports[name] if entry["webhook"]["port"] != "14000"
                                                   else ports["slack-secure"])
                entry.pop("namespace", None)  # stripe.yaml's stray field
                if name == "minio":
                    entry["endpoint"] = minio
        (dest / f"{name}.yaml").write_text(yaml.safe_dump(doc))
    (dest / "sensor.yaml").write_text(yaml.safe_dump(_sensor(sink)))


def _tls_pair() -> tuple[str, str]:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def _post(port: int, path: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.fixture
def minio_server() -> Iterator[MinioListen]:
    server = MinioListen({"input"}, {MINIO_ACCESS: MINIO_SECRET}).start()
    yield server
    server.stop()


def test_upstream_provider_examples_fire_a_sensor_with_argos_data(tmp_path: Path, minio_server: MinioListen) -> None:
    sink = harness.Sink()
    ports = {name: _free_port() for name in ("slack", "slack-secure", "stripe", "bitbucket", "bitbucketserver",
                                              "gerrit", "storage-grid")}
    _prepare(tmp_path / "m", ports, minio_server.endpoint, sink.url)
    cert, key = _tls_pair()
    env = harness.knevents_env(tmp_path, {
        "KNEVENTS_SECRET_SLACK_SECRET_SIGNINGSECRET": SLACK_SECRET,
        "KNEVENTS_SECRET_SLACK_SECRET_TOKENKEY": "ZZZZZZWSxiZZZ2yIvs3peJ",
        "KNEVENTS_SECRET_MY_SECRET_CERT_KEY": cert, "KNEVENTS_SECRET_MY_SECRET_PK_KEY": key,
        "KNEVENTS_SECRET_BITBUCKETSERVER_ACCESS_SECRET": BBS_SECRET,
        "KNEVENTS_SECRET_ARTIFACTS_MINIO_ACCESSKEY": MINIO_ACCESS,
        "KNEVENTS_SECRET_ARTIFACTS_MINIO_SECRETKEY": MINIO_SECRET,
    })
    runner = harness.RunnerProcess([tmp_path / "m"], tmp_path / "state", env, args=["--no-hooks"]).start()
    try:
        _send_all(ports)
        harness.poll(lambda: minio_server.listeners == 1, "the minio listener")
        minio_server.emit(json.loads(payload("minio-event-docs.json"))["Records"][0])
        got = {r.path.lstrip("/"): r.json()["value"] for r in sink.wait(len(DEPENDENCIES))}
        assert got == {
            "slack": "<@U0LAN0Z89> is it everything a river should be?",
            "stripe": "evt_3MtwBwLkdIwHu7ix28a3tqPa",
            "bitbucket": "main",
            "bitbucketserver": "refs/heads/master",
            "gerrit": "argo-webhook",
            "storage-grid": "hello-world.txt",
            "minio": "gopher.jpg",
        }
        assert SLACK_SECRET not in runner.output() and BBS_SECRET not in runner.output()
        assert runner.stop() == 0
    finally:
        runner.kill()
        sink.close()


def _send_all(ports: dict[str, int]) -> None:
    mention = payload("slack-app-mention.json")
    stamp = str(int(time.time()))
    forged = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=00"}
    assert _post(ports["slack"], "/", mention, forged) == 401
    mac = hmac.new(SLACK_SECRET.encode(), f"v0:{stamp}:".encode() + mention, hashlib.sha256).hexdigest()
    assert _post(ports["slack"], "/", mention, {**forged, "X-Slack-Signature": "v0=" + mac}) == 200
    assert _post(ports["stripe"], "/example", payload("stripe-payment-intent-succeeded.json"),
                 {"Content-Type": "application/json"}) == 200
    push = payload("bitbucket-repo-push.json")
    assert _post(ports["bitbucket"], "/push", push, {"Content-Type": "application/json",
                                                     "X-Event-Key": "repo:push"}) == 200
    refs = payload("bitbucketserver-refs-changed.json")
    signature = "sha256=" + hmac.new(BBS_SECRET.encode(), refs, hashlib.sha256).hexdigest()
    assert _post(ports["bitbucketserver"], "/push", refs, {"X-Event-Key": "repo:refs_changed",
                                                           "X-Hub-Signature": "sha256=" + "0" * 64}) == 400
    assert _post(ports["bitbucketserver"], "/push", refs, {"X-Event-Key": "repo:refs_changed",
                                                           "X-Hub-Signature": signature}) == 200
    assert _post(ports["gerrit"], "/push", payload("gerrit-patchset-created.json"),
                 {"Content-Type": "application/json"}) == 200
    form = urlencode({"Action": "Publish", "TopicArn": "topic arn", "Version": "2010-03-31",
                      "Message": payload("storagegrid-message.json").decode()}).encode()
    assert _post(ports["storage-grid"], "/", form, {"Content-Type": "application/x-www-form-urlencoded"}) == 200



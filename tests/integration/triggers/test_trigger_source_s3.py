"""``source.s3``: a k8s trigger's resource read from a real moto_server that checks SigV4 signatures.

The sensor is the trigger of Argo's tutorial ``03-trigger-sources/sensor-minio.yaml`` with its endpoint
pointed at moto; the event goes through the sensor runtime and the Workflow lands in the Kubernetes stand-in.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from knevents import errors, events, triggers, validation
from knevents.local.natsd import free_port
from knevents.runtime.sensor import SensorRuntime
from knevents.secrets import SecretResolver, env_name
from knevents.settings import KubeSettings, SecretSettings, Settings
from knevents.spec import models
from knevents.state.memory import MemoryStore
from knevents.triggers import fetch_http, kube

from tests.fixtures.aws import AuthMoto
from tests.fixtures.kube import KubeApi
from tests.integration.triggers.http_target import Answer, HttpTarget, make_pki, trickle
from tests.unit.triggers import trigger_support as support

# the tutorial's Sensor (examples/tutorials/03-trigger-sources/sensor-minio.yaml), plus a parameter
TUTORIAL = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: webhook, namespace: argo-events}
spec:
  template: {serviceAccountName: operate-workflow-sa}
  dependencies:
    - {name: test-dep, eventSourceName: webhook, eventName: example}
  triggers:
    - template:
        name: workflow-trigger
        k8s:
          operation: create
          source:
            s3:
              bucket: {name: workflows, key: hello-world.yaml}
              endpoint: minio-service.argo-events:9000
              insecure: true
              accessKey: {key: accesskey, name: artifacts-minio}
              secretKey: {key: secretkey, name: artifacts-minio}
          parameters:
            - src: {dependencyName: test-dep, dataKey: body.message}
              dest: spec.arguments.parameters.0.value
"""
WORKFLOW = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: hello-world-
spec:
  entrypoint: whalesay
  arguments:
    parameters: [{name: message, value: none}]
"""


def _secrets(moto: AuthMoto, secret_key: str | None = None) -> dict[str, str]:
    """The tutorial's ``artifacts-minio`` Secret as the resolver's environment variables."""
    return {
        env_name("SECRET", "artifacts-minio", "accesskey"): moto.access_key,
        env_name("SECRET", "artifacts-minio", "secretkey"): secret_key or moto.secret_key,
    }


def _s3(moto: AuthMoto, bucket: str, key: str, **extra: Any) -> dict[str, Any]:
    return {
        "bucket": {"name": bucket, "key": key},
        "endpoint": moto.url.removeprefix("http://"),
        "insecure": True,
        "accessKey": {"name": "artifacts-minio", "key": "accesskey"},
        "secretKey": {"name": "artifacts-minio", "key": "secretkey"},
        **extra,
    }


@pytest.fixture
def bucket(moto_auth_server: AuthMoto) -> Iterator[str]:
    name = f"workflows-{uuid.uuid4().hex[:12]}"
    s3 = moto_auth_server.client("s3")
    s3.create_bucket(Bucket=name)
    yield name


@pytest.fixture
def settings(kube_api: KubeApi) -> Iterator[Settings]:
    kube.forget_clients()
    yield Settings(kube=KubeSettings(kubeconfig=str(kube_api.kubeconfig_path)))
    kube.forget_clients()


def _fetch(moto: AuthMoto, s3: dict[str, Any], secret_key: str | None = None) -> Any:
    trigger = support.trigger({"name": "t", "k8s": {"operation": "create", "source": {"s3": s3}}})
    return triggers.fetch_resource(trigger, support.context(secrets=_secrets(moto, secret_key)))


def test_the_tutorial_sensor_creates_the_workflow_from_s3(
    moto_auth_server: AuthMoto, bucket: str, kube_api: KubeApi, settings: Settings, tmp_path: Path
) -> None:
    moto_auth_server.client("s3").put_object(Bucket=bucket, Key="hello-world.yaml", Body=WORKFLOW.encode())
    manifest = yaml.safe_load(TUTORIAL)
    manifest["spec"]["triggers"][0]["template"]["k8s"]["source"]["s3"].update(
        endpoint=moto_auth_server.url.removeprefix("http://"), bucket={"name": bucket, "key": "hello-world.yaml"}
    )
    sensor = validation.parse_sensor(manifest)  # validate's path: an s3 source passes with no note
    secrets = SecretResolver(SecretSettings(secrets_dir=str(tmp_path)), env=_secrets(moto_auth_server))
    runtime = SensorRuntime(sensor, MemoryStore(), settings=settings, secrets=secrets, observe=False)
    event = events.new_event(source="webhook", subject="example", type="webhook", data={"body": {"message": "hi"}})

    outcome = asyncio.run(runtime.process(event))

    assert [f.trigger for f in outcome.fired] == ["workflow-trigger"], outcome.to_json()
    [workflow] = kube_api.objects("argoproj.io", "v1alpha1", "workflows", "argo-events")
    assert workflow["metadata"]["name"].startswith("hello-world-")
    assert workflow["spec"]["entrypoint"] == "whalesay"
    assert workflow["spec"]["arguments"]["parameters"][0]["value"] == "hi"


async def test_a_configmap_under_a_key_that_needs_encoding(moto_auth_server: AuthMoto, bucket: str) -> None:
    key = "team a/config map+1.yaml"  # space, slash and plus: the signed path must match the sent one
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-s3}\ndata: {x: '1'}\n"
    moto_auth_server.client("s3").put_object(Bucket=bucket, Key=key, Body=body.encode())
    resource = await _fetch(moto_auth_server, _s3(moto_auth_server, bucket, key, region="us-east-1"))
    assert resource == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-s3"}, "data": {"x": "1"}}


async def test_a_missing_key_or_bucket_is_a_permanent_error(moto_auth_server: AuthMoto, bucket: str) -> None:
    with pytest.raises(errors.TriggerError, match=r"answered 404 \(NoSuchKey\)") as missing:
        await _fetch(moto_auth_server, _s3(moto_auth_server, bucket, "nope.yaml"))
    assert not isinstance(missing.value, errors.TriggerRetryableError)
    assert f"/{bucket}/nope.yaml" in str(missing.value)
    with pytest.raises(errors.TriggerError, match=r"answered 404 \(NoSuchBucket\)"):
        await _fetch(moto_auth_server, _s3(moto_auth_server, f"{bucket}-gone", "wf.yaml"))


async def test_a_wrong_secret_key_is_refused_and_never_shown(moto_auth_server: AuthMoto, bucket: str) -> None:
    moto_auth_server.client("s3").put_object(Bucket=bucket, Key="wf.yaml", Body=WORKFLOW.encode())
    wrong = "wrong-secret-" + uuid.uuid4().hex
    with pytest.raises(errors.TriggerError, match=r"answered 403 \(SignatureDoesNotMatch\)") as refused:
        await _fetch(moto_auth_server, _s3(moto_auth_server, bucket, "wf.yaml"), secret_key=wrong)
    assert not isinstance(refused.value, errors.TriggerRetryableError)
    assert wrong not in str(refused.value) and moto_auth_server.secret_key not in str(refused.value)
    # anonymous (no keys): moto checks every request, so a private bucket refuses it
    anonymous = {k: v for k, v in _s3(moto_auth_server, bucket, "wf.yaml").items() if not k.endswith("Key")}
    with pytest.raises(errors.TriggerError, match="answered 403"):
        await _fetch(moto_auth_server, anonymous)


async def test_text_that_is_not_a_resource_is_refused(moto_auth_server: AuthMoto, bucket: str) -> None:
    s3 = moto_auth_server.client("s3")
    s3.put_object(Bucket=bucket, Key="bad.yaml", Body=b"kind: [unclosed\n")
    s3.put_object(Bucket=bucket, Key="list.yaml", Body=b"- a\n- b\n")
    with pytest.raises(errors.TriggerError, match=r"source\.s3 .*/bad\.yaml: not valid YAML/JSON"):
        await _fetch(moto_auth_server, _s3(moto_auth_server, bucket, "bad.yaml"))
    with pytest.raises(errors.TriggerError, match="must hold one object"):
        await _fetch(moto_auth_server, _s3(moto_auth_server, bucket, "list.yaml"))


async def test_an_unreachable_or_failing_store_is_retryable(moto_auth_server: AuthMoto, tmp_path: Path) -> None:
    closed = {**_s3(moto_auth_server, "workflows", "wf.yaml"), "endpoint": f"127.0.0.1:{free_port()}"}
    with pytest.raises(errors.TriggerRetryableError, match="ConnectError"):
        await _fetch(moto_auth_server, closed)
    failing = HttpTarget(tmp_path).start()
    try:
        failing.default = Answer(503, b"<Error><Code>SlowDown</Code></Error>")
        endpoint = failing.url("/").removeprefix("http://").rstrip("/")
        with pytest.raises(errors.TriggerRetryableError, match=r"answered 503 \(SlowDown\)"):
            await _fetch(moto_auth_server, {**_s3(moto_auth_server, "workflows", "wf.yaml"), "endpoint": endpoint})
    finally:
        failing.close()


async def test_https_trusts_the_ca_certificate_of_the_secret(moto_auth_server: AuthMoto, tmp_path: Path) -> None:
    # moto serves plain HTTP: a TLS stand-in answers the GetObject, to check the transport (https, trust)
    pki = make_pki()
    store = HttpTarget(tmp_path, pki=pki).start()
    try:
        store.default = Answer(200, b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tls}\n")
        endpoint = store.url("").removeprefix("https://")
        s3 = {**_s3(moto_auth_server, "workflows", "wf.yaml"), "endpoint": endpoint, "insecure": False}
        with pytest.raises(errors.TriggerRetryableError, match="ConnectError"):  # not in the default trust store
            await _fetch(moto_auth_server, s3)
        ca = {"caCertificate": {"name": "minio-ca", "key": "ca.crt"}}
        trigger = support.trigger({"name": "t", "k8s": {"source": {"s3": {**s3, **ca}}}})
        ctx = support.context(secrets={**_secrets(moto_auth_server), env_name("SECRET", "minio-ca", "ca.crt"): pki.ca.cert})
        resource = await triggers.fetch_resource(trigger, ctx)
        assert resource is not None and resource["metadata"] == {"name": "tls"}
        [sent] = store.seen
        assert sent.method == "GET" and sent.path == "/workflows/wf.yaml"
        assert sent.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={moto_auth_server.access_key}/")
    finally:
        store.close()


SENSOR = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: s3-source}
spec:
  dependencies: [{name: d, eventSourceName: webhook, eventName: example}]
  triggers:
  - template:
      name: wf
      k8s:
        operation: create
        source:
          s3: {endpoint: "https://minio:9000", bucket: {name: workflows}, accessKey: {name: s, key: a}}
"""


async def test_validate_and_the_runtime_refuse_the_same_s3_source() -> None:
    manifests = validation.load_text(SENSOR)
    where = "spec.triggers[0].template.k8s.source.s3"
    paths = sorted(p.path for p in manifests.problems)
    assert paths == [where, f"{where}.bucket.key", f"{where}.endpoint"], manifests.problems
    assert not manifests.unsupported
    trigger = support.trigger(yaml.safe_load(SENSOR)["spec"]["triggers"][0]["template"])
    with pytest.raises(errors.TriggerError, match=r"source\.s3\.endpoint: the endpoint is host\[:port\]"):
        await triggers.fetch_resource(trigger, support.context())


def test_validate_accepts_exactly_the_locations_the_runtime_reads() -> None:
    read = {
        "configmap": {"name": "c", "key": "k"},
        "file": {"path": "wf.yaml"},
        "url": {"path": "http://127.0.0.1:1/wf.yaml"},
        "s3": {"endpoint": "minio:9000", "bucket": {"name": "b", "key": "k"}},
        "git": {"url": "file:///srv/repo.git", "filePath": "wf.yaml"},
    }
    assert {"resource", "inline", *read} == triggers.ARTIFACT_LOCATIONS
    # every location Argo defines is read: a new one in the models fails here until it has a reader or a note
    assert {f.alias for f in models.ArtifactLocation.model_fields.values()} == triggers.ARTIFACT_LOCATIONS
    for location, spec in read.items():
        assert triggers.reads_resource(support.trigger({"name": "t", "k8s": {"source": {location: spec}}}))


async def test_a_key_with_dot_segments_is_refused_not_read_as_another_object(moto_server: str) -> None:
    import boto3

    bucket = f"dots-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="wf.yaml", Body=b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: another}\n")
    # the HTTP client resolves /b/team/../wf.yaml to /b/wf.yaml: another object than the one named
    spec = {"bucket": {"name": bucket, "key": "team/../wf.yaml"}, "endpoint": moto_server.removeprefix("http://"),
            "insecure": True}
    trigger = support.trigger({"name": "t", "k8s": {"operation": "create", "source": {"s3": spec}}})
    with pytest.raises(errors.TriggerError, match=r"source\.s3\.bucket\.key: a key with a `\.` or `\.\.` path segment"):
        await triggers.fetch_resource(trigger, support.context())


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("endpoint", "bot:pa55word@minio:9000", "endpoint"),  # user info: the URL's host would be minio
        ("endpoint", "minio:9000?x=", "endpoint"),
        ("endpoint", "minio:9000#", "endpoint"),
        ("bucket", {"name": "b/../other", "key": "wf.yaml"}, "bucket.name"),
        ("bucket", {"name": "b", "key": "./wf.yaml"}, "bucket.key"),
    ],
)
def test_validate_refuses_an_endpoint_bucket_or_key_that_changes_the_url(field: str, value: Any, problem: str) -> None:
    manifest = yaml.safe_load(SENSOR)
    s3 = {"endpoint": "minio:9000", "bucket": {"name": "b", "key": "wf.yaml"}, field: value}
    manifest["spec"]["triggers"][0]["template"]["k8s"]["source"]["s3"] = s3
    manifests = validation.load_text(yaml.safe_dump(manifest))
    assert [p.path for p in manifests.problems] == [f"spec.triggers[0].template.k8s.source.s3.{problem}"]
    assert "pa55word" not in str(manifests.problems)


async def test_a_store_trickling_its_answer_is_given_up_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_http, "DEADLINE", 3.0)  # ample to connect and get the answer's head
    store = trickle()
    try:
        spec = {"bucket": {"name": "b", "key": "wf.yaml"}, "endpoint": f"127.0.0.1:{store.port}", "insecure": True}
        trigger = support.trigger({"name": "t", "k8s": {"operation": "create", "source": {"s3": spec}}})
        async with asyncio.timeout(60):  # the old reader read on for as long as bytes kept coming
            with pytest.raises(errors.TriggerRetryableError, match="not read within 3s"):
                await triggers.fetch_resource(trigger, support.context())
        assert await asyncio.to_thread(store.hung_up.wait, 60)
    finally:
        store.close()

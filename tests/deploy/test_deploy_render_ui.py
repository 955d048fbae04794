"""``knevents render --ui``: the web UI as a Knative Service against the cluster's NATS.

The objects are checked against Knative's CRD schemas and Kubernetes' schemas (the checker of
``render --check``, and the schema models of tests/deploy/schemas.py); the rendered container is then run
the way Knative would run it: its command and args, ``$PORT`` set, the ConfigMap laid out as the kubelet
mounts one (``..<timestamp>/`` plus ``..data`` and per-file symlinks), the token read from the "Secret",
against a real nats-server that holds no knevents bus stream (as a cluster's NATS does not).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from knevents import cli, spec
from knevents.deploy import check, kn, options, render, ui
from knevents.local.natsd import NatsServer, free_port

from tests.deploy import corpus, crds, schemas
from tests.fixtures.ports import wait_for_port

QUICKSTART = corpus.REPO / "examples" / "quickstart"
TOKEN = "ui-t0ken-from-the-secret"


def _rendering(**kwargs: Any) -> render.Rendering:
    return render.render_paths([QUICKSTART], options.RenderOptions(**kwargs))


def _ui_objects(rendering: render.Rendering) -> dict[str, dict[str, Any]]:
    group = next(g for g in rendering.groups if g.kind == "ui")
    return {obj["kind"]: obj for obj in group.objects}


def _container(service: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = service["spec"]["template"]["spec"]["containers"][0]
    return container


def test_the_ui_is_rendered_only_with_ui() -> None:
    plain = _rendering()
    assert not [g for g in plain.groups if g.kind == "ui"]
    assert not [o for o in plain.objects if o["metadata"]["name"].startswith("knevents-ui")]
    with_ui = _rendering(ui=True)
    assert [(g.kind, g.name, g.namespace) for g in with_ui.groups if g.kind == "ui"] == [
        ("ui", "knevents-ui", "default")
    ]
    for before, after in zip(plain.objects, with_ui.objects[: len(plain.objects)], strict=True):
        if after["kind"] == "Service" and after["metadata"]["name"] == "build-sensor-sensor":
            # a change to the rest: the sensor function records its firings where the UI reads them
            env = _container(after)["env"]
            assert {"name": "KNEVENTS_RECORD_FIRINGS", "value": "1"} in env
            assert "KNEVENTS_RECORD_FIRINGS" not in {e["name"] for e in _container(before)["env"]}
            _container(after)["env"] = [e for e in env if e["name"] != "KNEVENTS_RECORD_FIRINGS"]
        if after["kind"] == "Trigger":  # the other: the UI takes the sensor's dead letters
            assert "deadLetterSink" not in before["spec"]["delivery"]
            assert after["spec"]["delivery"].pop("deadLetterSink") == {
                "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "knevents-ui"},
                "uri": ui.dead_letter_path("build-sensor")}
        assert after == before


@pytest.mark.parametrize("release", crds.RELEASES)
def test_the_ui_objects_pass_knative_and_kubernetes_schemas(release: str) -> None:
    rendering = _rendering(ui=True, ui_allow_actions=True, nats_credentials_secret="nats-creds")
    assert set(_ui_objects(rendering)) == {"ConfigMap", "Service", "Trigger", "SinkBinding"}
    objs = rendering.objects  # the sensor's Trigger too: its dead letters go to the UI
    assert [str(f) for f in crds.findings(objs, release)] == []


def test_the_ui_objects_pass_the_vendored_schemas_and_survive_a_schema_round_trip() -> None:
    objs = list(_ui_objects(_rendering(ui=True, ui_allow_actions=True)).values())
    assert [str(f) for f in check.check(objs, schemas=check.knative_schemas())] == []
    for obj in objs:
        assert schemas.roundtrip(obj) == obj  # no field the schema does not know


def test_the_configmap_holds_every_eventsource_and_sensor_mounted_where_the_command_reads() -> None:
    objs = _ui_objects(_rendering(ui=True))
    held = [yaml.safe_load(text) for text in objs["ConfigMap"]["data"].values()]
    assert sorted((d["kind"], d["metadata"]["name"], d["metadata"]["namespace"]) for d in held) == [
        ("EventSource", "webhook", "default"), ("Sensor", "build-sensor", "default")
    ]
    pod = objs["Service"]["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v.get("configMap", {}).get("name") == "knevents-ui")
    mount = next(m for m in _container(objs["Service"])["volumeMounts"] if m["name"] == volume["name"])
    container = _container(objs["Service"])
    assert mount["mountPath"] == ui.UI_DIR and mount["readOnly"] is True
    assert container["command"] == ["knevents"]
    assert container["args"] == ["ui", ui.UI_DIR, "--host", "0.0.0.0", "--receive-events"]
    assert "PORT" not in {e["name"] for e in container["env"]}  # Knative sets it
    assert container["readinessProbe"] == {"httpGet": {"path": "/health"}}
    annotations = objs["Service"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "0"


def test_a_trigger_without_filter_brings_every_event_of_the_broker_to_the_ui() -> None:
    objs = _ui_objects(_rendering(ui=True))
    trigger = objs["Trigger"]
    sensor_trigger = next(o for o in _rendering().objects if o["kind"] == "Trigger")
    assert trigger["metadata"]["name"] == "knevents-ui" and trigger["metadata"]["namespace"] == "default"
    assert trigger["spec"]["broker"] == sensor_trigger["spec"]["broker"] == "default"
    assert "filter" not in trigger["spec"]  # Knative: no filter, every event
    assert trigger["spec"]["subscriber"] == {
        "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "knevents-ui"},
        "uri": ui.EVENTS_PATH}
    assert trigger["spec"]["delivery"]["retry"] == sensor_trigger["spec"]["delivery"]["retry"]
    assert "deadLetterSink" not in trigger["spec"]["delivery"]
    assert "SinkBinding" not in objs  # no replay, no need for the Broker's address


def test_a_dead_letter_sink_of_the_users_wins_over_the_ui() -> None:
    rendering = _rendering(ui=True, dead_letter_sink="my-dlq")
    sensor_trigger = next(o for o in rendering.objects
                          if o["kind"] == "Trigger" and o["metadata"]["name"] != "knevents-ui")
    assert sensor_trigger["spec"]["delivery"]["deadLetterSink"]["ref"]["name"] == "my-dlq"


def test_with_actions_a_sinkbinding_gives_the_ui_the_brokers_address_for_replay() -> None:
    group = next(g for g in _rendering(ui=True, ui_allow_actions=True).groups if g.kind == "ui")
    kinds = [o["kind"] for o in group.objects]
    assert kinds == ["ConfigMap", "SinkBinding", "Service", "Trigger"]  # the binding first: K_SINK at creation
    binding = group.objects[1]
    assert binding["spec"]["subject"]["name"] == "knevents-ui"
    assert binding["spec"]["sink"]["ref"] == {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                                              "name": "default"}


def test_the_token_comes_from_a_secret_listed_as_a_prerequisite() -> None:
    for secret in ("knevents-ui", "my-ui-token"):
        rendering = _rendering(ui=True, ui_token_secret=secret)
        env = {e["name"]: e for e in _container(_ui_objects(rendering)["Service"])["env"]}
        assert env["KNEVENTS_UI_TOKEN"] == {
            "name": "KNEVENTS_UI_TOKEN", "valueFrom": {"secretKeyRef": {"name": secret, "key": "token"}}
        }
        assert f"Secret default/{secret} (used by Service default/knevents-ui)" in map(
            str, rendering.prerequisites)
        assert any(secret in w and "create it before applying" in w for w in rendering.warnings)


def test_read_only_unless_actions_are_asked_for() -> None:
    assert "--allow-actions" not in _container(_ui_objects(_rendering(ui=True))["Service"])["args"]
    allowed = _container(_ui_objects(_rendering(ui=True, ui_allow_actions=True))["Service"])
    assert allowed["args"][-1] == "--allow-actions"


def test_nats_wiring_is_the_sensor_services_own() -> None:
    rendering = _rendering(ui=True, nats_url="nats://nats.events:4222", nats_credentials_secret="nats-creds")
    services = {o["metadata"]["name"]: o for o in rendering.objects if o["kind"] == "Service"}
    sensor, shown = services["build-sensor-sensor"], services["knevents-ui"]

    def nats(service: dict[str, Any]) -> tuple[list[Any], list[Any], list[Any]]:
        pod = service["spec"]["template"]["spec"]
        env = [e for e in _container(service)["env"] if e["name"].startswith("KNEVENTS_NATS")]
        volumes = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "nats-creds"]
        mounts = [m for m in _container(service)["volumeMounts"] if m["name"] in {v["name"] for v in volumes}]
        return env, volumes, mounts

    assert nats(shown) == nats(sensor)
    env, volumes, mounts = nats(shown)
    assert {e["name"] for e in env} == {"KNEVENTS_NATS_URL", "KNEVENTS_NATS_CREDS"} and volumes and mounts
    bus = {e["name"]: e.get("value") for e in _container(shown)["env"]}["KNEVENTS_BUS_NAME"]
    assert bus == "default"


def test_one_ui_per_namespace_and_bus() -> None:
    docs = corpus.documents(QUICKSTART / "sensor.yaml")["Sensor"][0]
    other = {**docs, "metadata": {**docs["metadata"], "name": "other"}, "spec": {**docs["spec"], "eventBusName": "ops"}}
    rendering = render.render([], [docs, other], options=options.RenderOptions(ui=True))
    uis = {g.name: g for g in rendering.groups if g.kind == "ui"}
    assert set(uis) == {"knevents-ui", "knevents-ui-ops"}
    held = yaml.safe_load(next(iter(uis["knevents-ui-ops"].objects[0]["data"].values())))
    assert held["metadata"]["name"] == "other"


def test_the_cli_flags(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["render", str(QUICKSTART), "--ui", "--ui-allow-actions", "--check"]) == 0
    objs = list(yaml.safe_load_all(capsys.readouterr().out))
    service = next(o for o in objs if o["metadata"]["name"] == "knevents-ui" and o["kind"] == "Service")
    assert "--allow-actions" in _container(service)["args"]
    assert cli.main(["render", str(QUICKSTART), "--ui-allow-actions"]) == 1
    assert "go with --ui" in capsys.readouterr().err
    assert cli.main(["render", str(QUICKSTART), "--ui", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "ui-default-knevents-ui.yaml").is_file()
    assert "ui-default-knevents-ui.yaml" in (tmp_path / "kustomization.yaml").read_text()


def test_the_kn_script_runs_the_same_command_with_the_token_from_the_secret() -> None:
    rendering = _rendering(ui=True)
    script = kn.script(rendering)
    line = next(x for x in script.splitlines() if x.startswith("kn service create knevents-ui "))
    words = shlex.split(line)
    container = _container(_ui_objects(rendering)["Service"])
    assert [w.removeprefix("--cmd=") for w in words if w.startswith("--cmd=")] == container["command"]
    assert [w.removeprefix("--arg=") for w in words if w.startswith("--arg=")] == container["args"]
    assert "KNEVENTS_UI_TOKEN=secret:knevents-ui:token" in words
    assert "/etc/knevents/ui=cm:knevents-ui" in words and "http::8080:/health" in words
    assert "# - Secret default/knevents-ui (used by Service default/knevents-ui)" in script
    create = shlex.split(next(x.strip() for x in script.splitlines()
                                      if x.strip().startswith("kn trigger create knevents-ui ")))
    assert "--filter" not in create and create[create.index("--sink") + 1] == "ksvc:knevents-ui"
    patch = next(shlex.split(x) for x in script.splitlines()
                 if x.startswith("kubectl patch triggers.eventing.knative.dev knevents-ui "))
    spec = json.loads(patch[patch.index("--patch") + 1])["spec"]
    assert spec["subscriber"]["uri"] == ui.EVENTS_PATH and spec["delivery"]["retry"] == 5


def _mount_like_the_kubelet(data: dict[str, str], where: Path) -> Path:
    """A ConfigMap volume as the kubelet writes it: files in ``..<time>/``, ``..data`` and per-key symlinks."""
    stamped = where / "..2026_12_05_19_30_00.000000001"
    stamped.mkdir(parents=True)
    for key, text in data.items():
        (stamped / key).write_text(text)
        (where / key).symlink_to(Path("..data") / key)
    (where / "..data").symlink_to(stamped.name)
    return where


def test_a_mounted_configmap_loads_each_manifest_once(tmp_path: Path) -> None:
    data = _ui_objects(_rendering(ui=True))["ConfigMap"]["data"]
    loaded = spec.load_paths([_mount_like_the_kubelet(data, tmp_path / "ui")])
    assert [s.metadata.name for s in loaded.sensors] == ["build-sensor"]
    assert [e.metadata.name for e in loaded.event_sources] == ["webhook"]


def _get(url: str, token: str | None = None, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _knative_env(container: dict[str, Any], nats_url: str, port: int) -> dict[str, str]:
    """The container's env as the kubelet resolves it, with the cluster's NATS being the test's server."""
    secrets = {("knevents-ui", "token"): TOKEN}
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "HOME": os.environ.get("HOME", "/tmp"), "PORT": str(port)}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[(ref["name"], ref["key"])]
    env["KNEVENTS_NATS_URL"] = nats_url
    return env


def test_the_rendered_container_serves_health_openly_and_the_rest_with_the_token(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    objs = _ui_objects(_rendering(ui=True))
    container = _container(objs["Service"])
    mounted = _mount_like_the_kubelet(objs["ConfigMap"]["data"], tmp_path / "mnt")
    port = free_port()
    argv = [str(mounted) if word == ui.UI_DIR else word for word in [*container["command"], *container["args"]]]
    proc = subprocess.Popen(argv, env=_knative_env(container, nats_server.url, port),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, "knevents ui (the rendered container)")
        base = f"http://127.0.0.1:{port}"
        assert _get(f"{base}/health") == (200, b"ok\n")
        status, body = _get(f"{base}/api/graph")
        assert status == 401 and b"build-sensor" not in body
        assert _get(f"{base}/api/graph", "a-wrong-token")[0] == 401
        status, body = _get(f"{base}/api/graph", TOKEN)
        graph = json.loads(body)
        assert status == 200 and graph["read_only"] is True
        assert [n["label"] for n in graph["graph"]["nodes"] if n["kind"] == "sensor"] == ["build-sensor"]
        status, body = _get(f"{base}/api/state", TOKEN)
        assert status == 200 and [s["trigger"] for s in json.loads(body)] == ["trigger-workflow"]
        assert _get(f"{base}/api/deadletters/1/discard", TOKEN, method="POST")[0] == 403  # read-only
        # the Broker delivers to the Trigger's subscriber: the Service's cluster-local address, no token
        delivery = urllib.request.Request(f"{base}{ui.EVENTS_PATH}", method="POST", data=b'{"n": 1}', headers={
            "Host": "knevents-ui.default.svc.cluster.local", "ce-specversion": "1.0", "ce-id": "from-broker",
            "ce-source": "webhook", "ce-subject": "build", "ce-type": "webhook", "content-type": "application/json"})
        with urllib.request.urlopen(delivery, timeout=30) as answer:
            assert answer.status == 200
        status, body = _get(f"{base}/api/events", TOKEN)
        assert status == 200 and [(e["id"], e["sensors"]) for e in json.loads(body)] == [
            ("from-broker", ["build-sensor"])]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode(errors="replace")
    assert TOKEN.encode() not in out

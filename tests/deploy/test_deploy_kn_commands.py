"""``--format kn``: every object becomes a kn command with real kn flags, or YAML with the reason."""

from __future__ import annotations

import itertools
import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml
from knevents.deploy import kn, names, render

from tests import upstream
from tests.deploy import corpus, fakekn

# Flags taking a value, from the kn reference (docs/cmd/kn_*_create.md in knative/client).
KN_FLAGS = {
    ("service", "create"): {
        "--namespace",
        "--image",
        "--env",
        "--env-value-from",
        "--env-from",
        "--mount",
        "--label",
        "--annotation-revision",
        "--scale-min",
        "--scale-max",
        "--service-account",
        "--pull-secret",
        "--request",
        "--limit",
        "--security-context",
        "--cluster-local",
        "--force",
        "--probe-readiness",
    },
    ("broker", "create"): {"--namespace", "--class", "--broker-config"},
    ("broker", "describe"): {"--namespace"},
    ("source", "ping"): {"--namespace", "--schedule", "--sink", "--data"},
    ("source", "binding"): {"--namespace", "--subject", "--sink", "--ce-override"},
    ("trigger", "create"): {"--namespace", "--broker", "--filter", "--sink"},
    ("trigger", "update"): {"--namespace", "--filter", "--sink"},
    ("trigger", "describe"): {"--namespace"},
}


def _rendering() -> render.Rendering:
    sources = corpus.documents(upstream.example("event-sources", "aws-sqs.yaml"))["EventSource"]
    sources.append(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "EventSource",
            "metadata": {"name": "cal"},
            "spec": {
                "calendar": {
                    "hourly": {"schedule": "0 * * * *"},
                    "paris": {"schedule": "0 8 * * *", "timezone": "Europe/Paris"},
                }
            },
        }
    )
    sensors = corpus.documents(upstream.example("sensors", "special-workflow-trigger-shortened.yaml"))[
        "Sensor"
    ]
    sensors[0].setdefault("metadata", {})["annotations"] = {names.ANNOTATION_DEAD_LETTER_SINK: "dlq"}
    bus = corpus.documents(upstream.example("eventbus", "native.yaml"))["EventBus"]
    return render.render(sources, sensors, bus)


def _snippets(script: str) -> tuple[list[list[str]], list[dict[str, Any]], list[str]]:
    """(kn/kubectl-patch command words, YAML objects, comments) of a generated script."""
    commands, objs, comments = [], [], []
    for block in re.split(r"\n\n", script):
        heredoc = re.search(r"kubectl apply -f - <<'EOF'\n(.*?\n)EOF", block, re.S)
        if heredoc:
            objs.extend(yaml.safe_load_all(heredoc.group(1)))
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("#") and not line.startswith("#!"):
                comments.append(line)
                continue
            # `describe … || create …` and `if describe …; then update …; else create …; fi`
            line = re.sub(r"^(if|then|else) ", "", line).replace(" >/dev/null 2>&1", "").rstrip(";")
            for part in line.split(" || "):
                if part.startswith(("kn ", "kubectl patch")):
                    commands.append(shlex.split(part.removesuffix("; then")))
    return commands, objs, comments


def test_every_object_is_covered_once() -> None:
    rendering = _rendering()
    commands, objs, _ = _snippets(kn.script(rendering))
    kn_made = [c for c in commands if c[0] == "kn" and "create" in c[1:4]]
    assert len(kn_made) + len(objs) == len(rendering.objects)
    assert objs == [o for o in rendering.objects if o in objs]  # YAML kept verbatim and in order


def test_only_documented_kn_flags_are_used() -> None:
    commands, _, _ = _snippets(kn.script(_rendering()))
    for words in commands:
        if words[0] != "kn":
            continue
        allowed = KN_FLAGS[(words[1], words[2])]
        used = {w for w in words if w.startswith("--")}
        assert used <= allowed, (words[:4], used - allowed)


def test_service_command_carries_env_mounts_and_scale() -> None:
    rendering = _rendering()
    service = next(
        o
        for o in rendering.objects
        if o["kind"] == "Service" and o["metadata"]["name"] == "aws-sqs-eventsource"
    )
    commands, _, _ = _snippets(kn.script(rendering))
    words = next(c for c in commands if c[:4] == ["kn", "service", "create", "aws-sqs-eventsource"])
    pairs = list(itertools.pairwise(words))
    container = service["spec"]["template"]["spec"]["containers"][0]
    envs = {v for f, v in pairs if f == "--env"}
    assert envs == {f"{e['name']}={e['value']}" for e in container["env"]}
    mounts = {v.split("=", 1)[0] for f, v in pairs if f == "--mount"}
    assert mounts == {m["mountPath"] for m in container["volumeMounts"]}
    assert ("--scale-min", "1") in pairs and ("--scale-max", "1") in pairs
    assert ("--image", container["image"]) in pairs
    assert "--cluster-local" in words  # an SQS poller needs no public route
    assert not any(v.startswith("networking.knative.dev/visibility") for f, v in pairs if f == "--label")


def test_trigger_delivery_is_patched_because_kn_cannot_set_it() -> None:
    rendering = _rendering()
    trigger = next(o for o in rendering.objects if o["kind"] == "Trigger")
    commands, _, comments = _snippets(kn.script(rendering))
    create = next(c for c in commands if c[:3] == ["kn", "trigger", "create"])
    assert ["--filter", f"source={trigger['spec']['filter']['attributes']['source']}"] == create[8:10]
    patch = next(c for c in commands if c[:2] == ["kubectl", "patch"])
    assert json.loads(patch[patch.index("--patch") + 1]) == {
        "spec": {"delivery": trigger["spec"]["delivery"]}
    }
    assert any("no delivery flags" in c for c in comments)


def test_ping_source_goes_to_the_calendar_route_and_time_zones_fall_back_to_yaml() -> None:
    commands, objs, comments = _snippets(kn.script(_rendering()))
    ping = next(c for c in commands if c[:4] == ["kn", "source", "ping", "create"])
    assert (
        ping[ping.index("--sink") + 1] == "http://cal-eventsource.default.svc.cluster.local/calendar/hourly"
    )
    assert any(o["kind"] == "PingSource" and o["spec"]["timezone"] == "Europe/Paris" for o in objs)
    assert any("no time zone flag" in c for c in comments)


def test_yaml_fallbacks_say_why() -> None:
    _, objs, comments = _snippets(kn.script(_rendering()))
    kinds = {o["kind"] for o in objs}
    assert {"ConfigMap", "Role", "RoleBinding"} <= kinds
    assert any("kn has no ConfigMap command" in c for c in comments)
    assert any("kn does not manage RBAC" in c for c in comments)


def test_the_script_runs_twice_to_the_same_state(tmp_path: Path) -> None:
    # every kn-made kind (Broker, Service, PingSource, SinkBinding, Trigger + delivery patch) and kubectl YAML
    script = kn.script(_rendering())
    cluster = fakekn.FakeCluster(tmp_path)
    first = cluster.run(script)
    assert first.returncode == 0, first.stderr
    once = cluster.state()
    calls = len(cluster.calls())
    second = cluster.run(script)
    assert second.returncode == 0, second.stderr
    assert cluster.state() == once
    made = {key.split(" ")[0] for key in once if key != "patches"}
    assert {"broker", "service", "trigger", "source"} <= made
    # the second run updated what exists instead of failing on "already exists"
    rerun = cluster.calls()[calls:]
    assert any(c[:3] == ["kn", "trigger", "update"] for c in rerun)
    assert any(c[:4] == ["kn", "source", "ping", "update"] for c in rerun)
    assert not any(c[:3] == ["kn", "broker", "create"] for c in rerun)  # immutable: left alone


def test_a_plain_create_script_is_what_the_fake_refuses_to_rerun(tmp_path: Path) -> None:
    # the fake behaves like kn: a second plain create fails, which the generated script must avoid
    cluster = fakekn.FakeCluster(tmp_path)
    create = "set -e\nkn trigger create t --namespace ns --broker default --sink ksvc:s\n"
    assert cluster.run(create).returncode == 0
    again = cluster.run(create)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_services_keep_the_health_readiness_probe() -> None:
    rendering = _rendering()
    commands, _, _ = _snippets(kn.script(rendering))
    services = [c for c in commands if c[:3] == ["kn", "service", "create"]]
    assert services
    for words in services:
        assert words[words.index("--probe-readiness") + 1] == "http::8080:/health"
        assert "--force" in words


def test_prerequisites_head_the_script() -> None:
    sources = corpus.documents(corpus.REPO / "examples" / "seeds" / "module-1.2" / "m05-kafka-sasl-tls.yaml")
    rendering = render.render(sources["EventSource"], [])
    head = kn.script(rendering).split("set -e")[0]
    assert "# - Secret default/kafka-sasl (used by Service default/kafka-events-eventsource)" in head
    assert "# - Secret default/kafka-tls" in head
    assert "eventing-natss" in head

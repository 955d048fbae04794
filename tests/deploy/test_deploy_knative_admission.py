"""Inputs the examples do not cover render to what Knative's admission webhooks accept (issue 18)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from knevents import errors
from knevents.deploy import check, render
from knevents.deploy.options import RenderOptions

from tests.deploy import corpus, crds


def _source(spec: dict[str, Any], name: str = "hooks") -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": name},
        "spec": spec,
    }


def _sensor(spec: dict[str, Any], name: str = "on-hook") -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor", "metadata": {"name": name}, "spec": spec}


WEBHOOK = {"webhook": {"e": {"endpoint": "/e", "method": "POST", "port": "12000"}}}
DOWNWARD_ENV = [
    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
    {"name": "LEVEL", "value": "debug"},
]


def _env(rendering: render.Rendering) -> dict[str, Any]:
    service = next(o for o in rendering.objects if o["kind"] == "Service")
    return {e["name"]: e for e in service["spec"]["template"]["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize("kind", ["EventSource", "Sensor"])
def test_downward_api_env_is_rendered_as_knative_admits_it_with_a_warning(kind: str) -> None:
    template = {"container": {"env": DOWNWARD_ENV}}
    if kind == "EventSource":
        rendering = render.render([_source({**WEBHOOK, "template": template})], [], options=None)
    else:
        spec = {
            "template": template,
            "dependencies": [{"name": "d", "eventSourceName": "hooks", "eventName": "e"}],
            "triggers": [{"template": {"name": "log", "log": {}}}],
        }
        rendering = render.render([], [_sensor(spec)])
    env = _env(rendering)
    assert env["POD_NAMESPACE"] == {"name": "POD_NAMESPACE", "value": "default"}
    assert env["LEVEL"] == {"name": "LEVEL", "value": "debug"}
    assert "POD_NAME" not in env and "CPU" not in env
    flagged = [w for w in rendering.warnings if "kubernetes.podspec-fieldref" in w]
    assert len(flagged) == 2
    assert "POD_NAME" in flagged[0] and "metadata.name" in flagged[0]
    assert "CPU" in flagged[1] and "limits.cpu" in flagged[1]
    assert check.check(rendering.objects) == []


@pytest.mark.parametrize("release", crds.RELEASES)
def test_downward_api_env_passes_each_release(release: str) -> None:
    rendering = render.render([_source({**WEBHOOK, "template": {"container": {"env": DOWNWARD_ENV}}})], [])
    assert crds.findings(rendering.objects, release) == []


def _example_sets() -> list[Any]:
    examples = corpus.REPO / "examples"
    sets = [d for d in sorted(examples.iterdir()) if d.is_dir() and d.name != "seeds"]
    return sets + sorted(p for p in (examples / "seeds").rglob("*.yaml"))


def test_two_examples_applied_into_one_namespace_do_not_conflict() -> None:
    # quickstart has an EventBus "default"; the webhook seed has none, so its Broker "default" is implicit
    one = RenderOptions(namespace="events")
    quickstart = render.render_paths([corpus.REPO / "examples" / "quickstart"], one)
    seed = corpus.REPO / "examples" / "seeds" / "complete-documentation" / "c01-webhook-eventsource.yaml"
    webhook = render.render_paths([seed], one)
    brokers = [o for o in [*quickstart.objects, *webhook.objects] if o["kind"] == "Broker"]
    assert len(brokers) == 2 and brokers[0] == brokers[1]
    assert check.check([*quickstart.objects, *webhook.objects]) == []


def test_every_pair_of_examples_renders_each_broker_alike() -> None:
    # every example rendered on its own into one namespace, as a user applies them one after the other;
    # same-named EventSources/Sensors of different examples replace each other (mutable), Brokers must not differ
    seen: dict[tuple[str, str], tuple[str, Any]] = {}
    clashes = []
    union = []
    for example in _example_sets():
        objs = render.render_paths([example], RenderOptions(namespace="shared")).objects
        union += objs
        for obj in objs:
            if obj["kind"] == "Broker" or obj["metadata"]["name"].endswith("-jetstream-channel"):
                first = seen.setdefault((obj["kind"], obj["metadata"]["name"]), (example.name, obj))
                if first[1] != obj:
                    clashes.append(f"{obj['kind']} {obj['metadata']['name']}: {first[0]} and {example.name}")
    assert clashes == []
    assert len({k for k in seen if k[0] == "Broker"}) >= 1
    assert [f for f in check.check(union) if f.object.startswith("Broker")] == []


def test_referenced_secrets_and_service_accounts_are_listed_as_prerequisites() -> None:
    sensor = _sensor(
        {
            "template": {"serviceAccountName": "operate-workflow-sa"},
            "dependencies": [{"name": "d", "eventSourceName": "hooks", "eventName": "e"}],
            "triggers": [
                {
                    "template": {
                        "name": "http",
                        "http": {
                            "url": "https://example.com",
                            "basicAuth": {
                                "username": {"name": "http-user", "key": "user"},
                                "password": {"name": "http-user", "key": "password"},
                            },
                        },
                    }
                }
            ],
        }
    )
    source = _source({**WEBHOOK, "template": {"imagePullSecrets": [{"name": "registry-login"}]}})
    rendering = render.render([source], [sensor])
    listed = [w for w in rendering.warnings if w.startswith("not rendered, create it before applying")]
    assert listed == [
        "not rendered, create it before applying: Secret default/http-user (used by Service default/on-hook-sensor)",
        "not rendered, create it before applying: Secret default/registry-login (used by Service default/hooks-eventsource)",
        "not rendered, create it before applying: ServiceAccount default/operate-workflow-sa "
        "(used by Service default/on-hook-sensor)",
    ]


def test_the_corpus_credentials_nobody_mentioned_are_listed() -> None:
    named = " ".join(
        w
        for path in corpus.manifest_files()
        for w in render.render(**_by_kind(corpus.documents(path))).warnings
    )
    named += " ".join(render.render_paths([corpus.REPO / "examples" / "s3-csv-pipeline"]).warnings)
    for name in (
        "operate-workflow-sa",
        "s3-credentials",
        "github-access",
        "webhook-cert",
        "kafka-sasl",
        "kafka-tls",
    ):
        assert f"/{name} (used by" in named, name


def _by_kind(docs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "event_sources": docs.get("EventSource", []),
        "sensors": docs.get("Sensor", []),
        "event_buses": docs.get("EventBus", []),
    }


REFUSED = corpus.refused_files()


@pytest.mark.parametrize("path", REFUSED, ids=[corpus.ident(p) for p in REFUSED])
def test_an_unsupported_source_type_is_refused_not_deployed_as_a_do_nothing_service(path: Any) -> None:
    with pytest.raises(errors.SpecError) as caught:
        render.render(**_by_kind(corpus.documents(path)))
    named = {p.path.removeprefix("spec.") for p in caught.value.problems if p.unsupported}
    assert named == corpus.unsupported_types(path)


def test_an_unsupported_source_type_is_refused_by_the_cli(tmp_path: Any, capsys: Any) -> None:
    from knevents import cli

    manifest = tmp_path / "nsq.yaml"
    source = _source({"nsq": {"example": {"hostAddress": "nsqd:4150", "topic": "t", "channel": "c"}}})
    manifest.write_text(yaml.safe_dump(source))
    assert cli.main(["render", str(manifest)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "'nsq' is not supported by knevents" in captured.err

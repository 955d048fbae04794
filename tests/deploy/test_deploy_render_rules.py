"""What ``knevents render`` builds for EventSources, Sensors and EventBuses, rule by rule."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from knevents import errors
from knevents.deploy import check, names, options, render


def _source(name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": name, **meta},
        "spec": spec,
    }


def _sensor(name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": name, **meta},
        "spec": spec,
    }


LOG = [{"template": {"name": "log", "log": {}}}]


def _kinds(rendering: render.Rendering, kind: str) -> list[dict[str, Any]]:
    return [o for o in rendering.objects if o["kind"] == kind]


def _annotations(service: dict[str, Any]) -> dict[str, str]:
    return dict(service["spec"]["template"]["metadata"]["annotations"])


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in service["spec"]["template"]["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize(
    ("spec", "push"),
    [
        ({"webhook": {"e": {"endpoint": "/e", "port": "12000"}}}, True),
        ({"github": {"e": {"repositories": []}}}, True),
        ({"sns": {"e": {"topicArn": "arn", "webhook": {"endpoint": "/e", "port": "1"}}}}, True),
        ({"s3": {"e": {"bucket": {"name": "b"}, "events": ["s3:ObjectCreated:*"]}}}, True),
        ({"s3": {"e": {"bucket": {"name": "b"}, "sqs": {"queue": "q"}}}}, False),
        ({"pubSub": {"e": {"topic": "t", "push": {"endpoint": "/p"}}}}, True),
        ({"pubSub": {"e": {"topic": "t"}}}, False),
        ({"calendar": {"e": {"schedule": "*/5 * * * *"}}}, True),
        ({"calendar": {"e": {"interval": "10s"}}}, False),
        ({"sqs": {"e": {"queue": "q", "region": "us-east-1"}}}, False),
        ({"nats": {"e": {"url": "nats://x", "subject": "s"}}}, False),
        ({"webhook": {"a": {"endpoint": "/a"}}, "sqs": {"b": {"queue": "q"}}}, False),
    ],
)
def test_push_sources_scale_to_zero_and_pull_sources_keep_one_replica(
    spec: dict[str, Any], push: bool
) -> None:
    service = _kinds(render.render([_source("src", spec)], []), "Service")[0]
    scale = _annotations(service)
    if push:
        assert scale == {"autoscaling.knative.dev/min-scale": "0"}
    else:
        assert scale == {"autoscaling.knative.dev/min-scale": "1", "autoscaling.knative.dev/max-scale": "1"}


@pytest.mark.parametrize(
    ("spec", "public"),
    [
        ({"webhook": {"e": {"endpoint": "/e"}}}, True),
        ({"s3": {"e": {"bucket": {"name": "b"}}}}, True),
        ({"pubSub": {"e": {"topic": "t", "push": {"endpoint": "/p"}}}}, True),
        ({"calendar": {"e": {"schedule": "* * * * *"}}}, False),
        ({"sqs": {"e": {"queue": "q"}}}, False),
        ({"pubSub": {"e": {"topic": "t"}}}, False),
    ],
)
def test_only_sources_fed_from_outside_get_a_public_route(spec: dict[str, Any], public: bool) -> None:
    service = _kinds(render.render([_source("src", spec)], []), "Service")[0]
    visibility = service["metadata"]["labels"].get("networking.knative.dev/visibility")
    assert visibility == (None if public else "cluster-local")


def test_push_entries_sharing_a_path_are_reported() -> None:
    spec = {
        "webhook": {"a": {"endpoint": "/hook", "port": "12000"}, "b": {"endpoint": "/hook", "port": "13000"}},
        "s3": {"uploads": {"bucket": {"name": "b"}}},
        "sqs": {"uploads": {"queue": "q"}},
    }
    rendering = render.render([_source("src", spec)], [])
    assert rendering.warnings == (
        "EventSource src: webhook.a and webhook.b listen on the same path /hook; "
        "on Knative every event shares one port, give them different endpoints",
    )


def test_sensors_are_never_public() -> None:
    sensor = _sensor(
        "s", {"dependencies": [{"name": "d", "eventSourceName": "a", "eventName": "b"}], "triggers": LOG}
    )
    service = _kinds(render.render([], [sensor]), "Service")[0]
    assert service["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
    assert "networking.knative.dev/visibility" not in service["spec"]["template"]["metadata"]["labels"]


def test_event_source_publishes_to_its_bus_broker_and_reads_its_spec_from_a_config_map() -> None:
    doc = _source("hooks", {"eventBusName": "main", "webhook": {"e": {"endpoint": "/e"}}}, namespace="team-a")
    rendering = render.render([doc], [])
    service = _kinds(rendering, "Service")[0]
    env = _env(service)
    assert "K_SINK" not in env  # set by the SinkBinding from the Broker's status.address, never guessed
    (binding,) = _kinds(rendering, "SinkBinding")
    assert binding["metadata"]["namespace"] == "team-a"
    assert binding["spec"] == {
        "subject": {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "name": service["metadata"]["name"],
        },
        "sink": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "main"}},
    }
    assert env["KNEVENTS_FUNCTION"] == "eventsource"
    assert env["FUNCTION_TARGET"] == "handle_async"
    assert env["FUNCTION_USE_ASGI"] == "true"
    assert env["KNEVENTS_SPEC"] == f"{names.SPEC_DIR}/{names.SPEC_FILE}"
    config_map = next(o for o in _kinds(rendering, "ConfigMap") if names.SPEC_FILE in o["data"])
    assert yaml.safe_load(config_map["data"][names.SPEC_FILE])["spec"] == doc["spec"]
    assert {b["metadata"]["name"] for b in _kinds(rendering, "Broker")} == {"main"}
    assert {o["metadata"]["namespace"] for o in rendering.objects} == {"team-a"}


def test_namespace_flag_overrides_the_manifest() -> None:
    doc = _source("hooks", {"webhook": {"e": {"endpoint": "/e"}}}, namespace="team-a")
    rendering = render.render([doc], [], options=options.RenderOptions(namespace="prod"))
    assert {o["metadata"]["namespace"] for o in rendering.objects} == {"prod"}
    config_map = next(o for o in _kinds(rendering, "ConfigMap") if names.SPEC_FILE in o["data"])
    assert yaml.safe_load(config_map["data"][names.SPEC_FILE])["metadata"]["namespace"] == "prod"


def test_every_referenced_secret_is_mounted_where_the_resolver_reads_it() -> None:
    spec = {
        "sqs": {
            "e": {
                "queue": "q",
                "accessKey": {"name": "aws", "key": "id"},
                "secretKey": {"name": "aws", "key": "secret"},
            }
        },
        "webhook": {"w": {"endpoint": "/w", "authSecret": {"name": "hook-token", "key": "token"}}},
    }
    pod = _kinds(render.render([_source("s", spec)], []), "Service")[0]["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/var/run/secrets/knevents/aws"]]["secret"] == {"secretName": "aws"}
    assert volumes[mounts["/var/run/secrets/knevents/hook-token"]]["secret"] == {"secretName": "hook-token"}
    assert len(pod["volumes"]) == 3  # spec + two distinct secrets


def test_secrets_of_the_triggered_workload_are_not_mounted_into_the_sensor() -> None:
    workflow_env = {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "workflow-only", "key": "t"}}}
    spec = {
        "dependencies": [{"name": "d", "eventSourceName": "s", "eventName": "e"}],
        "triggers": [
            {
                "template": {
                    "name": "t",
                    "http": {"url": "http://x", "basicAuth": {"password": {"name": "basic", "key": "pw"}}},
                }
            },
            {
                "template": {
                    "name": "k",
                    "k8s": {
                        "operation": "create",
                        "source": {
                            "resource": {
                                "apiVersion": "v1",
                                "kind": "Pod",
                                "metadata": {"generateName": "p-"},
                                "spec": {"containers": [{"name": "c", "image": "i", "env": [workflow_env]}]},
                            }
                        },
                    },
                }
            },
        ],
    }
    service = _kinds(render.render([], [_sensor("s", spec)]), "Service")[0]
    secret_volumes = {
        v["secret"]["secretName"] for v in service["spec"]["template"]["spec"]["volumes"] if "secret" in v
    }
    assert secret_volumes == {"basic"}


def test_one_trigger_per_distinct_event_with_exact_filters_and_delivery() -> None:
    spec = {
        "dependencies": [
            {"name": "push", "eventSourceName": "github", "eventName": "push"},
            {"name": "push-again", "eventSourceName": "github", "eventName": "push"},
            {"name": "Scan_Done", "eventSourceName": "scanner", "eventName": "done"},
        ],
        "triggers": LOG,
    }
    rendering = render.render(
        [], [_sensor("gate", spec, annotations={names.ANNOTATION_DEAD_LETTER_SINK: "dlq"})]
    )
    triggers = _kinds(rendering, "Trigger")
    assert [t["spec"]["filter"]["attributes"] for t in triggers] == [
        {"source": "github", "subject": "push"},
        {"source": "scanner", "subject": "done"},
    ]
    for trigger in triggers:
        assert trigger["spec"]["broker"] == "default"
        assert trigger["spec"]["subscriber"]["ref"] == {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "name": "gate-sensor",
        }
        assert trigger["spec"]["delivery"] == {
            "retry": 5,
            "backoffPolicy": "exponential",
            "backoffDelay": "PT0.2S",
            "deadLetterSink": {
                "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "dlq"}
            },
        }
    # an invalid Argo dependency name still gives a valid, distinct object name
    assert triggers[1]["metadata"]["name"].startswith("gate-scan-done-")


def test_delivery_annotations_and_flags() -> None:
    sensor = _sensor(
        "s",
        {"dependencies": [{"name": "d", "eventSourceName": "a", "eventName": "b"}], "triggers": LOG},
        annotations={names.ANNOTATION_RETRY: "2", names.ANNOTATION_BACKOFF_DELAY: "PT1S"},
    )
    opts = options.RenderOptions(dead_letter_sink="https://dlq.example.com/in")
    delivery = _kinds(render.render([], [sensor], options=opts), "Trigger")[0]["spec"]["delivery"]
    assert delivery == {
        "retry": 2,
        "backoffPolicy": "exponential",
        "backoffDelay": "PT1S",
        "deadLetterSink": {"uri": "https://dlq.example.com/in"},
    }


def test_bad_delivery_annotations_are_reported_together() -> None:
    sensor = _sensor(
        "s",
        {"dependencies": [{"name": "d", "eventSourceName": "a", "eventName": "b"}], "triggers": LOG},
        annotations={names.ANNOTATION_RETRY: "many", names.ANNOTATION_BACKOFF_DELAY: "1s"},
    )
    with pytest.raises(errors.SpecError) as caught:
        render.render([], [sensor])
    paths = [p.path for p in caught.value.problems]
    assert paths == [
        f"metadata.annotations[{names.ANNOTATION_RETRY}]",
        f"metadata.annotations[{names.ANNOTATION_BACKOFF_DELAY}]",
    ]
    assert "'many'" in str(caught.value)


def test_sensor_service_scales_to_zero_with_nats_and_its_service_account() -> None:
    sensor = _sensor(
        "s",
        {
            "template": {"serviceAccountName": "operate-workflow-sa", "nodeSelector": {"a": "b"}},
            "dependencies": [{"name": "d", "eventSourceName": "a", "eventName": "b"}],
            "triggers": LOG,
        },
    )
    rendering = render.render([], [sensor], options=options.RenderOptions(nats_url="nats://nats.infra:4222"))
    service = _kinds(rendering, "Service")[0]
    assert _annotations(service) == {"autoscaling.knative.dev/min-scale": "0"}
    assert _env(service)["KNEVENTS_NATS_URL"] == "nats://nats.infra:4222"
    assert service["spec"]["template"]["spec"]["serviceAccountName"] == "operate-workflow-sa"
    assert rendering.warnings == (
        "Sensor s: spec.template.nodeSelector is not rendered (a Knative Service does not take it)",
        "not rendered, create it before applying: ServiceAccount default/operate-workflow-sa "
        "(used by Service default/s-sensor)",
    )


def test_calendar_schedule_gets_a_ping_source_to_its_calendar_route() -> None:
    spec = {
        "calendar": {
            "nightly": {"schedule": "0 2 * * *", "timezone": "Europe/Paris"},
            "tick": {"interval": "1m"},
        }
    }
    rendering = render.render([_source("cal", spec)], [])
    pings = _kinds(rendering, "PingSource")
    assert len(pings) == 1
    assert pings[0]["spec"] == {
        "schedule": "0 2 * * *",
        "sink": {
            "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "cal-eventsource"},
            "uri": "/calendar/nightly",
        },
        "timezone": "Europe/Paris",
    }


def test_calendar_catchup_gets_nats_for_its_tick_store() -> None:
    plain = render.render([_source("a", {"calendar": {"t": {"schedule": "* * * * *"}}})], [])
    catchup = {"schedule": "* * * * *", "persistence": {"catchup": {"enabled": True, "maxDuration": "5m"}}}
    stateful = render.render([_source("b", {"calendar": {"t": catchup}})], [])
    assert "KNEVENTS_NATS_URL" not in _env(_kinds(plain, "Service")[0])
    assert _env(_kinds(stateful, "Service")[0])["KNEVENTS_NATS_URL"] == options.DEFAULT_NATS_URL


def test_jetstream_bus_is_a_channel_broker_with_the_stream_limits() -> None:
    bus = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventBus",
        "metadata": {"name": "default"},
        "spec": {
            "jetstream": {"version": "latest", "streamConfig": "maxAge: 24h\nreplicas: 3\nduplicates: 300s\n"}
        },
    }
    rendering = render.render([_source("s", {"webhook": {"e": {"endpoint": "/e"}}})], [], [bus])
    brokers = _kinds(rendering, "Broker")
    assert len(brokers) == 1  # the EventBus provides "default": no implicit second one
    broker = brokers[0]
    assert broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"] == "MTChannelBasedBroker"
    config = next(
        o for o in _kinds(rendering, "ConfigMap") if o["metadata"]["name"] == broker["spec"]["config"]["name"]
    )
    channel = yaml.safe_load(config["data"]["channel-template-spec"])
    assert channel == {
        "apiVersion": "messaging.knative.dev/v1alpha1",
        "kind": "NatsJetStreamChannel",
        "spec": {"stream": {"config": {"maxAge": "24h0m0s", "replicas": 3, "duplicateWindow": "5m0s"}}},
    }


def test_event_sources_on_a_kafka_bus_get_the_kafka_brokers_address_not_a_guessed_one() -> None:
    bus = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventBus",
        "metadata": {"name": "kafka"},
        "spec": {"kafka": {"url": "kafka:9092"}},
    }
    source = _source("hooks", {"eventBusName": "kafka", "webhook": {"e": {"endpoint": "/e"}}})
    rendering = render.render([source], [], [bus])
    service = _kinds(rendering, "Service")[0]
    assert not [v for v in _env(service).values() if "ingress" in v]
    (binding,) = _kinds(rendering, "SinkBinding")
    assert binding["spec"]["sink"]["ref"]["name"] == _kinds(rendering, "Broker")[0]["metadata"]["name"]
    assert binding["spec"]["subject"]["name"] == service["metadata"]["name"]
    # the binding is applied before the Service, so the first revision already gets K_SINK
    kinds = [o["kind"] for o in rendering.objects]
    assert kinds.index("SinkBinding") < kinds.index("Service")
    assert check.check(rendering.objects) == []


def test_kafka_bus_is_a_kafka_broker() -> None:
    bus = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventBus",
        "metadata": {"name": "kafka"},
        "spec": {"kafka": {"url": "kafka:9092", "topic": "argo-events"}},
    }
    rendering = render.render([], [], [bus])
    broker = _kinds(rendering, "Broker")[0]
    assert broker["metadata"]["annotations"] == {
        "eventing.knative.dev/broker.class": "Kafka",
        "kafka.eventing.knative.dev/external.topic": "argo-events",
    }
    assert _kinds(rendering, "ConfigMap")[0]["data"]["bootstrap.servers"] == "kafka:9092"


def test_two_manifests_with_one_name_are_an_error() -> None:
    a = _source("same", {"webhook": {"e": {"endpoint": "/e"}}})
    with pytest.raises(errors.SpecError, match="EventSource default/same is given 2 times"):
        render.render([a, _source("same", {"webhook": {"f": {"endpoint": "/f"}}})], [])
    # in different namespaces they are different objects
    b = _source("same", {"webhook": {"f": {"endpoint": "/f"}}}, namespace="other")
    assert len(render.render([a, b], []).groups) == 4  # two Brokers, two EventSources


def test_two_manifests_rendering_the_same_object_is_an_error() -> None:
    # Trigger names join sensor and dependency names: "a" + "b-c" meets "a-b" + "c"
    one = _sensor(
        "a", {"dependencies": [{"name": "b-c", "eventSourceName": "x", "eventName": "y"}], "triggers": LOG}
    )
    two = _sensor(
        "a-b", {"dependencies": [{"name": "c", "eventSourceName": "x", "eventName": "z"}], "triggers": LOG}
    )
    with pytest.raises(
        errors.SpecError, match="Trigger default/a-b-c would be rendered for both sensor default/a"
    ):
        render.render([], [one, two])


@pytest.mark.parametrize(
    ("parts", "expected"),
    [(("web", "hook"), "web-hook"), (("Dep_1",), None), (("a" * 80,), None), (("1st",), None)],
)
def test_names_are_valid_dns_labels(parts: tuple[str, ...], expected: str | None) -> None:
    label = names.dns_label(*parts)
    assert len(label) <= 63
    assert label[0].isalpha() and all(c.islower() or c.isdigit() or c == "-" for c in label)
    if expected:
        assert label == expected
    else:
        assert label != names.dns_label(*parts, "x")

"""The model naming contract other parts code against, and that models.py matches its generator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest
from knevents import spec, validation
from knevents.spec import models

from tests import upstream
from tests.unit.spec.helpers import event_source, sensor

ROOT = Path(__file__).resolve().parents[3]

CONTRACT_CLASSES = [
    "Sensor",
    "SensorSpec",
    "EventDependency",
    "EventDependencyFilter",
    "EventDependencyTransformer",
    "DataFilter",
    "ExprFilter",
    "PayloadField",
    "TimeFilter",
    "EventContext",
    "Trigger",
    "TriggerTemplate",
    "TriggerParameter",
    "TriggerParameterSource",
    "TriggerPolicy",
    "K8SResourcePolicy",
    "StatusPolicy",
    "RateLimit",
    "Backoff",
    "HTTPTrigger",
    "StandardK8STrigger",
    "ArgoWorkflowTrigger",
    "ArtifactLocation",
    "LogTrigger",
    "AWSLambdaTrigger",
    "NATSTrigger",
    "SecureHeader",
    "BasicAuth",
    "TLSConfig",
    "ConditionsResetCriteria",
    "ConditionsResetByTime",
    "EventSource",
    "EventSourceSpec",
    "EventSourceFilter",
    "WebhookContext",
    "WebhookEventSource",
    "GithubEventSource",
    "GitlabEventSource",
    "CalendarEventSource",
    "SNSEventSource",
    "SQSEventSource",
    "PubSubEventSource",
    "NATSEventsSource",
    "S3Artifact",
    "S3Bucket",
    "S3Filter",
    "EventBus",
    "EventBusSpec",
    "JetStreamBus",
    "KafkaBus",
    "NATSBus",
    "SecretKeySelector",
    "ConfigMapKeySelector",
    "ObjectMeta",
    "S3EventSource",
    "PubSubPush",
]


@pytest.mark.parametrize("name", CONTRACT_CLASSES)
def test_contract_class_exists(name: str) -> None:
    cls = getattr(models, name)
    assert issubclass(cls, pydantic.BaseModel)
    assert models.CLASSES[name] is cls


def test_all_matches_the_classes() -> None:
    assert sorted(models.__all__) == sorted([*models.CLASSES, "CLASSES"])
    assert set(spec.__all__) <= set(dir(spec))


def test_attribute_names_and_free_form_objects() -> None:
    obj = sensor()
    obj["spec"]["triggers"][0]["retryStrategy"] = {"steps": 2}
    obj["spec"]["triggers"][0]["atLeastOnce"] = True
    parsed = validation.parse_sensor(obj)
    dep = parsed.spec.dependencies[0]
    assert (dep.name, dep.event_source_name, dep.event_name) == ("dep-a", "hooks", "a")
    trigger = parsed.spec.triggers[0]
    assert trigger.retry_strategy is not None and trigger.retry_strategy.steps == 2
    assert trigger.at_least_once is True and trigger.rate_limit is None
    k8s = parsed.spec.triggers[1].template.k8s
    assert k8s is not None and k8s.source is not None
    assert k8s.source.resource == {"apiVersion": "v1", "kind": "ConfigMap"}  # a plain dict
    assert k8s.parameters is not None and k8s.parameters[0].src is not None
    assert k8s.parameters[0].src.data_key == "body.x"
    assert parsed.metadata.name == "s" and parsed.metadata.namespace == "ns"


def test_models_are_frozen_forbid_unknown_and_populate_by_name() -> None:
    dep = models.EventDependency(name="d", event_source_name="e", event_name="n")
    assert dep.model_dump(by_alias=True, exclude_none=True) == {
        "name": "d",
        "eventSourceName": "e",
        "eventName": "n",
    }
    with pytest.raises(pydantic.ValidationError):
        dep.name = "x"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        models.EventDependency.model_validate({"name": "d", "eventSourceName": "e", "eventName": "n", "x": 1})


def test_python_keyword_fields_get_an_underscore() -> None:
    fields = {name: f.alias for name, f in models.AMQPQueueBindConfig.model_fields.items()}
    assert "no_wait" in fields
    keyworded = [
        (cls, n) for cls in models.CLASSES.values() for n, f in cls.model_fields.items() if f.alias == "from"
    ]
    assert keyworded and all(n == "from_" for _, n in keyworded)


def test_status_blocks_are_accepted_and_ignored() -> None:
    obj = sensor()
    obj["status"] = {"conditions": [{"type": "Deployed", "status": "True", "whatever": 1}]}
    assert validation.parse_sensor(obj).status is not None


def test_supported_trigger_kinds_are_template_fields() -> None:
    aliases = {f.alias for f in models.TriggerTemplate.model_fields.values()}
    assert aliases >= validation.supported_trigger_kinds()


def test_generated_file_is_up_to_date(tmp_path: Path) -> None:
    """models.py is what the generator writes from schema.json: nobody edited it by hand."""
    root = upstream.root()
    if root is None or not (root / "schema.json").is_file():  # missing data (a user's clone), not a service
        pytest.skip(upstream.REASON)
    schema = root / "schema.json"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_spec_models.py"), str(schema), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    generated = sorted(p.name for p in tmp_path.glob("models*.py"))
    assert generated == [
        "models.py",
        "models_common.py",
        "models_eventbus.py",
        "models_eventsource.py",
        "models_sensor.py",
    ]
    for name in generated:
        assert (tmp_path / name).read_text() == (
            ROOT / "framework" / "knevents" / "spec" / name
        ).read_text(), name


@pytest.mark.parametrize(
    ("parse", "manifest", "module"),
    [
        ("parse_sensor", sensor(), "models_sensor"),
        ("parse_event_source", event_source(), "models_eventsource"),
    ],
)
def test_a_function_builds_only_the_classes_of_its_kind(
    parse: str, manifest: dict[str, object], module: str
) -> None:
    """Cold start: loading a Sensor imports the Sensor and shared models only (and likewise an EventSource)."""
    code = (
        "import sys, json; from knevents import spec; "
        f"spec.{parse}(json.loads({json.dumps(json.dumps(manifest))})); "
        "print(sorted(m for m in sys.modules if m.startswith('knevents.spec.models')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    expected = ["knevents.spec.models", "knevents.spec.models_common", f"knevents.spec.{module}"]
    assert done.stdout.strip() == str(expected)

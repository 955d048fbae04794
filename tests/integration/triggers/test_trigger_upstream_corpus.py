"""Every trigger of the upstream Argo examples (and the project's examples/) runs in dry run.

The template's inline resource stands in for the engine's resolved one (parameters are the engine's
tests). Triggers whose resource is not inline need ``fetch_resource`` first and are listed apart;
known gaps are listed with the exact error they must keep giving (strict, like xfail(strict=True)).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from knevents import errors, triggers, validation
from knevents.secrets import SecretResolver
from knevents.settings import SecretSettings, Settings
from knevents.triggers import base, ratelimit

from tests import upstream
from tests.unit.triggers import trigger_support as support

REPO = Path(__file__).resolve().parents[3]
UPSTREAM = upstream.examples_dir()
KINDS = {
    "k8s": "k8s",
    "argo_workflow": "argoWorkflow",
    "http": "http",
    "log": "log",
    "aws_lambda": "awsLambda",
    "nats": "nats",
    "slack": "slack",
    "email": "email",
}

KNOWN_ERRORS = {
    # `argo submit` has no such flag; Argo's CLI fails the same way.
    ("special-workflow-trigger", "argo-workflow-trigger"): "--node-field-selector is not supported",
    # `to` is only filled by the trigger's parameters, which this dry run does not apply (see test_email_trigger_smtp)
    ("email-trigger", "email-trigger"): "to can't be empty",
}


def _sensors() -> list[tuple[str, Any]]:
    files = sorted(p for p in UPSTREAM.rglob("*") if p.suffix in (".yaml", ".yml")) if UPSTREAM else []
    files += sorted(p for p in (REPO / "examples").rglob("*") if p.suffix in (".yaml", ".yml"))
    found = []
    for path in files:
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError:
            continue
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") == "Sensor":
                try:
                    found.append((path.name, validation.parse_sensor(doc, file=str(path))))
                except errors.SpecError:
                    continue  # invalid upstream YAML is the spec's business (tests/unit/spec)
    return found


def _cases() -> list[Any]:
    cases = []
    for file, sensor in _sensors():
        for trigger in sensor.spec.triggers:
            attr = next((a for a in KINDS if getattr(trigger.template, a, None) is not None), None)
            if attr is None:
                continue
            part = getattr(trigger.template, attr)
            source = getattr(part, "source", None)
            if source is not None and source.resource is None:
                continue  # configmap / file / url / git: fetch_resource's tests
            ident = f"{file}:{sensor.metadata.name}:{trigger.template.name}"
            cases.append(pytest.param(sensor, trigger, KINDS[attr], id=ident))
    return cases


class AnySecret(dict[str, str]):
    """Environment for the secret resolver in which every secret/configmap key exists."""

    def get(self, key: str, default: Any = None) -> Any:
        return "dummy-value" if key.startswith(("KNEVENTS_SECRET_", "KNEVENTS_CONFIGMAP_")) else default


@pytest.mark.parametrize(("sensor", "trigger", "kind"), _cases())
async def test_example_trigger_runs_in_dry_run(sensor: Any, trigger: Any, kind: str) -> None:
    ratelimit.reset()
    part = getattr(trigger.template, {v: k for k, v in KINDS.items()}[kind])
    source = getattr(part, "source", None)
    resolved = support.Resolved(
        trigger=trigger.template.name,
        kind=kind,
        spec=trigger,
        resource=source.resource if source is not None else None,
        payload=b"{}",
        events={dep.name: support.event() for dep in sensor.spec.dependencies},
        error=None,
    )
    ctx = base.TriggerContext(
        sensor_name=sensor.metadata.name,
        namespace=sensor.metadata.namespace or "default",
        secrets=SecretResolver(
            SecretSettings(secrets_dir="/nonexistent", configmaps_dir="/nonexistent"), AnySecret()
        ),
        settings=Settings(),
        dry_run=True,
    )
    expected = KNOWN_ERRORS.get((sensor.metadata.name, trigger.template.name))
    if expected is not None:
        with pytest.raises(errors.TriggerError, match=expected):
            await triggers.fire(resolved, ctx)
        return
    result = await triggers.fire(resolved, ctx)
    assert result.detail.startswith(("dry run", "logged")), result.detail


def test_the_corpus_is_not_empty() -> None:
    if UPSTREAM is None:
        pytest.skip(upstream.REASON)
    assert len(_cases()) >= 40

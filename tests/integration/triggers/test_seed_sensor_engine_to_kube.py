"""The seed's build-sensor end to end: YAML -> engine (match, resolve) -> argoWorkflow trigger -> API stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import yaml
from knevents import events, triggers, validation
from knevents.sensors import engine
from knevents.settings import KubeSettings, Settings
from knevents.triggers import kube

from tests.fixtures.kube import KubeApi
from tests.unit.triggers import trigger_support as support

# /work/shared/seeds/argo-events-module-1.2.txt, hands-on "build-sensor" (its indentation restored).
SEED_SENSOR = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata:
  name: build-sensor
  namespace: argo-events
spec:
  dependencies:
  - name: webhook-build
    eventSourceName: webhook
    eventName: build
  triggers:
  - template:
      name: trigger-workflow
      argoWorkflow:
        operation: submit
        source:
          resource:
            apiVersion: argoproj.io/v1alpha1
            kind: Workflow
            metadata:
              generateName: event-build-
            spec:
              entrypoint: print-event
              arguments:
                parameters:
                - name: message
              templates:
              - name: print-event
                inputs:
                  parameters:
                  - name: message
                container:
                  image: alpine:3.19
                  command: [sh, -c]
                  args:
                  - echo "Received event data:" && echo "{{inputs.parameters.message}}"
        parameters:
        - src:
            dependencyName: webhook-build
            dataKey: body.project
          dest: spec.arguments.parameters.0.value
"""


@pytest.fixture
def settings(kube_api: KubeApi) -> Iterator[Settings]:
    kube.forget_clients()
    yield Settings(kube=KubeSettings(kubeconfig=str(kube_api.kubeconfig_path)))
    kube.forget_clients()


async def test_curl_to_the_webhook_submits_a_workflow_with_kubedojo(
    kube_api: KubeApi, settings: Settings
) -> None:
    sensor = validation.parse_sensor(yaml.safe_load(SEED_SENSOR))
    machine = engine.SensorEngine(sensor)
    # what the webhook source puts on the bus for: curl -d '{"project": "kubedojo", "branch": "main", ...}'
    event = events.new_event(
        source="webhook",
        subject="build",
        type="webhook",
        data={
            "header": {"Content-Type": ["application/json"]},
            "body": {"project": "kubedojo", "branch": "main"},
        },
        time=datetime.now(UTC),
    )
    [matched] = machine.match(event)
    assert matched.passed
    [name] = machine.triggers_for(matched.name)
    resolved = machine.resolve(name, {matched.name: matched.event})
    assert resolved.error is None and resolved.kind == "argoWorkflow"

    result = await triggers.fire(
        resolved, support.context(settings=settings, namespace=sensor.metadata.namespace)
    )

    [workflow] = kube_api.objects("argoproj.io", "v1alpha1", "workflows", "argo-events")
    assert workflow["spec"]["arguments"]["parameters"][0]["value"] == "kubedojo"
    assert workflow["metadata"]["name"].startswith("event-build-")
    assert workflow["metadata"]["labels"]["events.argoproj.io/sensor"] == "build-sensor"
    assert workflow["metadata"]["annotations"]["events.knevents.io/event-ids"] == event.id
    assert result.detail == f"submitted Workflow {workflow['metadata']['name']} in argo-events"

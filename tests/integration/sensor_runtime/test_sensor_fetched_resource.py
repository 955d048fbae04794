"""A k8s trigger whose resource lives in a ConfigMap: the runtime fetches it, then applies the parameters."""

from __future__ import annotations

import asyncio
from typing import Any

from knevents import events, triggers
from knevents.runtime.sensor import SensorRuntime
from knevents.secrets import SecretResolver
from knevents.settings import SecretSettings, Settings
from knevents.spec import parse_sensor
from knevents.state.memory import MemoryStore

SENSOR = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Sensor",
    "metadata": {"name": "from-configmap"},
    "spec": {
        "dependencies": [{"name": "d", "eventSourceName": "webhook", "eventName": "build"}],
        "triggers": [{"template": {"name": "wf", "k8s": {
            "operation": "create",
            "source": {"configmap": {"name": "workflows", "key": "build.yaml"}},
            "parameters": [{"src": {"dependencyName": "d", "dataKey": "body.project"},
                            "dest": "spec.arguments.parameters.0.value"}],
        }}}],
    },
}
RESOURCE = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: build-}
spec:
  arguments:
    parameters: [{name: project, value: none}]
"""


def test_a_configmap_resource_is_fetched_and_parameterised(tmp_path: Any) -> None:
    seen: list[Any] = []

    async def record(resolved: Any, ctx: triggers.TriggerContext) -> triggers.TriggerResult:
        seen.append(resolved)
        return triggers.TriggerResult(trigger=resolved.trigger, kind=resolved.kind, detail="recorded")

    secrets = SecretResolver(SecretSettings(secrets_dir=str(tmp_path), configmaps_dir=str(tmp_path)),
                             env={"KNEVENTS_CONFIGMAP_WORKFLOWS_BUILD_YAML": RESOURCE})
    runtime = SensorRuntime(parse_sensor(SENSOR), MemoryStore(), settings=Settings(), secrets=secrets, fire=record)
    event = events.new_event(source="webhook", subject="build", type="webhook", data={"body": {"project": "kubedojo"}})
    outcome = asyncio.run(runtime.process(event))
    assert outcome.status == 200 and len(seen) == 1
    assert seen[0].error is None
    assert seen[0].resource["spec"]["arguments"]["parameters"][0]["value"] == "kubedojo"
    assert seen[0].resource["metadata"]["generateName"] == "build-"

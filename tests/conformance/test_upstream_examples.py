"""Every manifest of Argo Events' own examples/ loads in knevents, or is rejected for a known reason.

The corpus is read from ``$KNEVENTS_ARGO_EXAMPLES/examples`` (``.ci/run`` points
it at a checkout of argo-events). Upstream files with stray or misplaced
fields (wrong case, nested at the wrong level, removed from Argo long ago) load
as Argo loads them, the field ignored, with the warnings listed in ``IGNORED``;
files that are invalid even so (no trigger kind left, a required field missing)
are listed in ``REJECTED`` with the exact fragments of the messages knevents
gives; valid Argo that knevents does not run is listed in ``UNSUPPORTED``. The
lists are strict: a file that starts passing, or a new problem, fails the test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from knevents import errors, validation

_ROOT = os.environ.get("KNEVENTS_ARGO_EXAMPLES")
if not _ROOT:
    pytest.skip("set KNEVENTS_ARGO_EXAMPLES to a checkout of argo-events' examples", allow_module_level=True)

EXAMPLES = Path(_ROOT) / "examples"
FILES = sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*") if p.suffix in (".yaml", ".yml"))

REJECTED: dict[str, list[str]] = {
    "sensors/trigger-openwhisk.yaml": [
        "spec.triggers[0].template: a trigger template needs a trigger kind",
        "spec.triggers[0].template.openwhisk: unknown field `openwhisk`; did you mean `openWhisk`?",
    ],
    "tutorials/09-http-trigger/sensor-01.yaml": [
        "spec.triggers[0].template.http.url: missing required field `url`",
        "spec.triggers[0].template.http.serverURL: unknown field `serverURL`; `serverURL` was renamed `url`",
    ],
    "tutorials/09-http-trigger/sensor-02.yaml": [
        "spec.triggers[0].template.http.url: missing required field `url`",
        "spec.triggers[0].template.http.serverURL: unknown field `serverURL`; `serverURL` was renamed `url`",
    ],
}
"""Upstream files that are wrong: file → one fragment per expected problem (``path: message``)."""

IGNORED: dict[str, list[str]] = {
    "event-sources/stripe.yaml": [
        "spec.stripe.example.namespace: unknown field `namespace` ignored (as in Argo)"
    ],
    "sensors/trigger-with-atleast-once-semantics.yaml": [
        "spec.triggers[0].template.atLeastOnce: unknown field `atLeastOnce` ignored (as in Argo); "
        "`atLeastOnce` belongs one level up, beside `template`"
    ],
    "sensors/trigger-with-policy.yaml": [
        "spec.triggers[0].template.policy: unknown field `policy` ignored (as in Argo); "
        "`policy` belongs one level up, beside `template`"
    ],
    "sensors/url-sensor.yaml": [
        "spec.triggers[0].template.k8s.source.url.verifycert: unknown field `verifycert` ignored (as in Argo); "
        "did you mean `verifyCert`?"
    ],
    "tutorials/03-trigger-sources/sensor-cm.yaml": [
        "spec.triggers[0].template.k8s.source.configmap.namespace: unknown field `namespace` ignored"
    ],
    "tutorials/03-trigger-sources/sensor-git.yaml": [
        "spec.triggers[0].template.k8s.source.git.sshKeyPath: unknown field `sshKeyPath` ignored (as in Argo); "
        "did you mean `sshKeySecret`?",
        "spec.triggers[0].template.k8s.source.git.namespace: unknown field `namespace` ignored",
    ],
    "tutorials/06-trigger-conditions/minio-event-source.yaml": [
        "spec.type: unknown field `type` ignored (as in Argo); `spec.type` was removed from Argo Events"
    ],
    "tutorials/06-trigger-conditions/webhook-event-source.yaml": [
        "spec.type: unknown field `type` ignored (as in Argo); `spec.type` was removed from Argo Events"
    ],
    "tutorials/09-http-trigger/minio-event-source.yaml": [
        "spec.type: unknown field `type` ignored (as in Argo); `spec.type` was removed from Argo Events"
    ],
}
"""Upstream files with stray or misplaced fields: they load (Argo ignores unknown fields) with these warnings."""

_SOURCES = {
    "azure-events-hub": "azureEventsHub",
    "azure-service-bus": "azureServiceBus",
    "emitter": "emitter",
    "hdfs": "hdfs",
    "nsq": "nsq",
    "pulsar": "pulsar",
}
UNSUPPORTED: dict[str, list[str]] = {
    **{
        f"event-sources/{name}.yaml": [f"spec.{key}: event source type `{key}` is not supported by knevents"]
        for name, key in _SOURCES.items()
    },
    "eventbus/native.yaml": ["spec.nats: EventBus type `nats` (NATS Streaming) is not supported by knevents"],
    "sensors/azure-event-hubs-sensor.yaml": [
        "spec.triggers[0].template.azureEventHubs: trigger kind `azureEventHubs` is not supported"
    ],
    "sensors/azure-service-bus-sensor.yaml": [
        "spec.triggers[0].template.azureServiceBus: trigger kind `azureServiceBus` is not supported"
    ],
    "sensors/trigger-source-git.yaml": [
        "spec.triggers[2].template.k8s.source.git.githubApp: GitHub App credentials for `source.git` are not supported"
    ],
}
"""Valid Argo that knevents does not run: file → one fragment per expected note."""

NOT_ARGO = {
    "rbac/sensor-rbac.yaml",
    "rbac/workflow-rbac.yaml",
    "tutorials/03-trigger-sources/trigger-store.yaml",
    "tutorials/09-http-trigger/http-server-svc.yaml",
    "tutorials/09-http-trigger/http-server.yaml",
}
"""Files holding only other kinds (RBAC, a ConfigMap, a Pod): skipped with a note."""


def _lines(found: list[errors.Problem]) -> list[str]:
    return [f"{p.path}: {p.message}" for p in found]


def _match(expected: list[str], found: list[errors.Problem]) -> None:
    lines = _lines(found)
    assert len(lines) == len(expected), lines
    for fragment in expected:
        assert any(fragment in line for line in lines), (fragment, lines)


@pytest.mark.parametrize("name", FILES)
def test_upstream_example(name: str) -> None:
    manifests = validation.collect([EXAMPLES / name])
    _match(REJECTED.get(name, []), manifests.problems)
    _match(IGNORED.get(name, []), manifests.warnings)
    _match(UNSUPPORTED.get(name, []), manifests.unsupported)
    if name in NOT_ARGO:
        assert manifests.count == 0 and manifests.skipped
    elif name not in REJECTED:
        assert manifests.count >= 1
    if name in REJECTED:
        with pytest.raises(errors.SpecError) as info:
            validation.load_paths(EXAMPLES / name)
        assert len(info.value.problems) == len(REJECTED[name])


def test_every_listed_file_exists() -> None:
    """The lists name real files, so a renamed upstream file cannot hide a regression."""
    listed = set(REJECTED) | set(IGNORED) | set(UNSUPPORTED) | NOT_ARGO
    assert listed <= set(FILES), sorted(listed - set(FILES))


def test_whole_corpus_in_one_call() -> None:
    """A folder loads recursively; every problem of every file is reported together."""
    manifests = validation.collect([EXAMPLES])
    assert len(manifests.files) == len(FILES)
    assert len(manifests.problems) == sum(len(v) for v in REJECTED.values())
    assert len(manifests.unsupported) == sum(len(v) for v in UNSUPPORTED.values())
    assert len(manifests.warnings) == sum(len(v) for v in IGNORED.values())
    assert {p.file for p in manifests.problems} == {str(EXAMPLES / n) for n in REJECTED}

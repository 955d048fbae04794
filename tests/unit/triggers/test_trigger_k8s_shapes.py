"""Pure parts of the k8s / argoWorkflow triggers: merging, patches, labels, argo submit args, submit-from."""

from __future__ import annotations

import pytest
from knevents import errors
from knevents.triggers import argo_workflow, base, k8s

from tests.unit.triggers import trigger_support as support


def test_deep_merge_merges_maps_and_replaces_everything_else() -> None:
    live = {"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"replicas": 1, "ports": [1, 2]}}
    new = {"metadata": {"labels": {"y": "2"}}, "spec": {"ports": [3]}}
    assert k8s.deep_merge(live, new) == {
        "metadata": {"name": "a", "labels": {"x": "1", "y": "2"}},
        "spec": {"replicas": 1, "ports": [3]},
    }
    assert live["spec"]["ports"] == [1, 2]


def test_json_patch_ops_set_fields_and_labels_one_by_one() -> None:
    ops = k8s.json_patch_ops(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "a", "labels": {"app/x": "1"}},
            "data": {"k": "v"},
        },
        {"metadata": {"name": "a", "labels": {}}},
    )
    assert ops == [
        {"op": "add", "path": "/metadata/labels/app~1x", "value": "1"},
        {"op": "add", "path": "/data", "value": {"k": "v"}},
    ]
    assert k8s.json_patch_ops({"metadata": {"annotations": {"a": "1"}}}, {"metadata": {}}) == [
        {"op": "add", "path": "/metadata/annotations", "value": {"a": "1"}}
    ]
    assert k8s.json_patch_ops({"metadata": {"annotations": {"a": "1"}}}, {"metadata": {}}) == [
        {"op": "add", "path": "/metadata/annotations", "value": {"a": "1"}}
    ]


def test_stamp_adds_argo_labels_and_knevents_annotations() -> None:
    fired = {"a": support.event(id="bbb"), "b": support.event(id="aaa")}
    resolved = support.resolved({"name": "make", "k8s": {"operation": "create"}}, fired=fired)
    obj: dict = {"metadata": {"labels": {"keep": "me"}}}
    k8s.stamp(obj, resolved, support.context(traceparent="00-abc-def-01"), labels=True)
    labels = obj["metadata"]["labels"]
    assert labels["keep"] == "me"
    assert labels["events.argoproj.io/sensor"] == "build-sensor"
    assert labels["events.argoproj.io/trigger"] == "make"
    assert labels["events.argoproj.io/action-timestamp"].isdigit()
    assert obj["metadata"]["annotations"] == {
        base.EVENT_IDS_ANNOTATION: "aaa,bbb",
        base.TRACEPARENT_ANNOTATION: "00-abc-def-01",
    }


def test_identity_rejects_resources_without_apiversion_or_kind() -> None:
    with pytest.raises(errors.TriggerError, match="needs apiVersion and kind"):
        k8s.identity({"metadata": {"name": "x"}}, "k8s trigger")
    with pytest.raises(errors.TriggerError, match="has no resource"):
        k8s.identity(None, "k8s trigger")


def test_submit_args_map_onto_the_workflow() -> None:
    wf: dict = {
        "metadata": {"generateName": "b-"},
        "spec": {"arguments": {"parameters": [{"name": "message"}]}},
    }
    argo_workflow.apply_submit_args(
        wf,
        [
            "-p",
            "message=hi",
            "--parameter",
            "extra=1",
            "--entrypoint=main",
            "--serviceaccount",
            "sa",
            "-l",
            "a=b",
        ],
    )
    assert wf["spec"]["arguments"]["parameters"] == [
        {"name": "message", "value": "hi"},
        {"name": "extra", "value": "1"},
    ]
    assert wf["spec"]["entrypoint"] == "main" and wf["spec"]["serviceAccountName"] == "sa"
    assert wf["metadata"]["labels"] == {"a": "b"}


def test_unsupported_submit_args_are_named() -> None:
    with pytest.raises(errors.TriggerError, match="--watch is not supported"):
        argo_workflow.apply_submit_args({}, ["--watch", "x"])


async def test_submit_from_workflow_template_uses_a_template_ref() -> None:
    wf = await argo_workflow.workflow_from(
        None, {"kind": "WorkflowTemplate", "metadata": {"name": "ci"}}, "ns"
    )
    assert wf["metadata"]["generateName"] == "ci-"
    assert wf["metadata"]["labels"] == {"workflows.argoproj.io/workflow-template": "ci"}
    assert wf["spec"] == {"workflowTemplateRef": {"name": "ci"}}


async def test_submit_from_cron_workflow_copies_the_workflow_spec() -> None:
    cron = {
        "kind": "CronWorkflow",
        "metadata": {"name": "nightly"},
        "spec": {"workflowSpec": {"entrypoint": "main"}},
    }
    wf = await argo_workflow.workflow_from(None, cron, "ns")
    assert wf["spec"] == {"entrypoint": "main"}
    assert wf["metadata"]["labels"] == {"workflows.argoproj.io/cron-workflow": "nightly"}


async def test_submit_from_other_kinds_is_refused() -> None:
    with pytest.raises(errors.TriggerError, match="must be WorkflowTemplate"):
        await argo_workflow.workflow_from(None, {"kind": "Pod", "metadata": {"name": "p"}}, "ns")


def test_submit_args_are_argv_words_not_shell_text() -> None:
    wf: dict = {}
    argo_workflow.apply_submit_args(wf, ["-p", "message=hello world"])
    assert wf["spec"]["arguments"]["parameters"] == [{"name": "message", "value": "hello world"}]

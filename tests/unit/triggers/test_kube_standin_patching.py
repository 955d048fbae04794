"""The stand-in's patch semantics (merge, JSON, simplified strategic) behave like the API server's."""

from __future__ import annotations

import pytest

from tests.kube_standin import patching


def test_merge_patch_merges_maps_and_null_deletes() -> None:
    doc = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    assert patching.merge_patch(doc, {"a": {"b": None, "d": 4}, "l": [3]}) == {
        "a": {"c": 2, "d": 4},
        "l": [3],
    }


def test_json_patch_operations() -> None:
    doc = {"metadata": {"labels": {}}, "spec": {"items": [1, 2]}}
    ops = [
        {"op": "add", "path": "/metadata/labels/x~1y", "value": "1"},
        {"op": "replace", "path": "/spec/items/0", "value": 9},
        {"op": "add", "path": "/spec/items/-", "value": 3},
        {"op": "remove", "path": "/spec/items/1"},
        {"op": "test", "path": "/spec/items/0", "value": 9},
    ]
    assert patching.json_patch(doc, ops) == {"metadata": {"labels": {"x/y": "1"}}, "spec": {"items": [9, 3]}}
    with pytest.raises(patching.PatchError):
        patching.json_patch(doc, [{"op": "remove", "path": "/nope"}])


def test_strategic_merge_merges_named_lists_by_name() -> None:
    doc = {"spec": {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}]}}
    patch = {"spec": {"containers": [{"name": "b", "image": "y:2"}, {"name": "c", "image": "z"}]}}
    assert patching.strategic_merge_patch(doc, patch)["spec"]["containers"] == [
        {"name": "a", "image": "x:1"},
        {"name": "b", "image": "y:2"},
        {"name": "c", "image": "z"},
    ]

"""The registries of event source types and trigger kinds are what everything else derives from.

These tests tie the supported sets to the modules that declare themselves, the
descriptors to Argo's generated models, and the import shortcut to the full scan,
so a type cannot be half added.
"""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest
from knevents import discovery, sources, triggers, validation
from knevents.sources import base as source_base
from knevents.spec import models
from knevents.triggers import base as trigger_base


def _field_models(cls: type[typing.Any]) -> dict[str, type[typing.Any]]:
    """Alias → the model a (``dict[str, Model] | None`` or ``Model | None``) field holds."""
    hints = typing.get_type_hints(cls)
    out = {}
    for name, field in cls.model_fields.items():
        args = [a for a in typing.get_args(hints[name]) if a is not type(None)]
        inner = typing.get_args(args[0]) if args else ()
        out[field.alias or name] = inner[-1] if inner else (args[0] if args else None)
    return out


def test_supported_sets_are_the_registries() -> None:
    assert validation.supported_source_types() == frozenset(sources.all_types())
    assert validation.supported_trigger_kinds() == frozenset(triggers.all_kinds())
    assert {"webhook", "github", "gitlab", "calendar", "sns", "sqs", "s3", "minio", "pubSub", "nats"} <= (
        validation.supported_source_types()
    )
    assert {"k8s", "argoWorkflow", "http", "log", "awsLambda", "nats"} <= validation.supported_trigger_kinds()


@pytest.mark.parametrize("key", sorted(sources.all_types()))
def test_source_type_matches_the_argo_spec(key: str) -> None:
    source_type = sources.find(key)
    assert isinstance(source_type, source_base.SourceType)
    assert source_type.key == key
    assert _field_models(models.EventSourceSpec)[key] is source_type.model
    assert source_type.data and source_type.cloudevent_type == key.lower()


@pytest.mark.parametrize("key", sorted(triggers.all_kinds()))
def test_trigger_kind_matches_the_argo_template(key: str) -> None:
    kind = triggers.find(key)
    assert isinstance(kind, trigger_base.TriggerKind)
    assert kind.key == key
    assert _field_models(models.TriggerTemplate)[key] is kind.model
    assert kind.summary and callable(kind.executor.execute)


def test_unknown_keys_are_not_found() -> None:
    assert sources.TYPES.get("nope") is None
    assert triggers.find("nope") is None
    with pytest.raises(Exception, match="not supported by knevents"):
        sources.find("nope")


def test_the_shortcut_and_the_scan_agree() -> None:
    """A fresh registry that looks a key up by module name finds what the full scan finds."""
    for key, source_type in sources.all_types().items():
        fresh = discovery.Registry[source_base.SourceType[typing.Any]]("knevents.sources", "SOURCE", lambda d: d.key)
        assert fresh.get(key) is source_type
    for key, kind in triggers.all_kinds().items():
        fresh_t = discovery.Registry[trigger_base.TriggerKind[typing.Any]](
            "knevents.triggers", "TRIGGER", lambda d: d.key
        )
        assert fresh_t.get(key) is kind


def test_module_name_guesses() -> None:
    assert discovery.module_names("awsLambda") == ("aws_lambda", "awslambda")
    assert discovery.module_names("webhook") == ("webhook",)


def test_a_key_declared_twice_is_an_error(tmp_path: typing.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "twice_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("a", "b"):
        (package / f"{name}.py").write_text("class D:\n    key = 'same'\nTHING = D()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = discovery.Registry[typing.Any]("twice_pkg", "THING", lambda d: d.key)
    with pytest.raises(discovery.DuplicateKeyError, match="same"):
        registry.all()


def test_looking_up_webhook_imports_no_other_type() -> None:
    """Cold start: the event source function of a webhook imports the webhook module only."""
    code = (
        "import sys; from knevents import sources; sources.find('webhook'); "
        "print(sorted(m for m in sys.modules if m.startswith('knevents.sources.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = eval(out)  # a printed list of module names
    assert "knevents.sources.webhook" in loaded
    assert not {"knevents.sources.s3", "knevents.sources.pubsub", "knevents.sources.sqs"} & set(loaded)


def test_only_the_custom_kind_leaves_its_parameters_to_its_executor() -> None:
    """The engine asks the kinds (``TriggerKind.fetches_resource``), no longer a list of its own."""
    from knevents.triggers import custom

    fetching = {key for key, kind in triggers.all_kinds().items() if kind.fetches_resource}
    assert fetching == {custom.TRIGGER.key}
    assert triggers.fetches_resource(custom.TRIGGER.key)
    assert not triggers.fetches_resource(next(iter(set(triggers.all_kinds()) - fetching)))
    assert not triggers.fetches_resource("noSuchKind")


def test_every_type_that_manages_hooks_has_its_hooks_module() -> None:
    """``knevents hooks`` derives its providers from ``SourceType.manages_hooks``, no list of its own."""
    import importlib

    from knevents import hooks

    declared = {key for key, kind in sources.all_types().items() if kind.manages_hooks}
    assert set(hooks.providers()) == declared
    assert len(declared) == 6  # the six providers whose hooks Argo registers and knevents manages
    for key in declared:
        module = importlib.import_module(f"knevents.hooks.{key}")
        assert all(callable(getattr(module, name, None)) for name in ("wants", "apply", "delete")), key

"""One error tree: every public exception of the sensor engine is a KneventsError and keeps being a ValueError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from knevents import errors, sensors
from knevents.state import base as state_base


def _public_exceptions() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.iter_modules(sensors.__path__):
        module = importlib.import_module(f"knevents.sensors.{info.name}")
        for name, value in vars(module).items():
            defined_here = inspect.isclass(value) and value.__module__.startswith("knevents.")
            if defined_here and issubclass(value, Exception) and not name.startswith("_"):
                found.append(value)
    return found


def test_every_public_sensor_error_is_in_the_tree() -> None:
    found = _public_exceptions()
    assert found
    for cls in found:
        assert issubclass(cls, errors.KneventsError), cls
        assert issubclass(cls, ValueError), cls  # callers that catch ValueError keep working
        assert cls.__module__ == "knevents.errors", cls  # defined in errors.py, re-exported where used


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (errors.ParamSpecError("spec.x", "bad"), errors.SpecError),
        (errors.CronError("bad cron"), errors.SpecError),
        (errors.ExprError("bad"), errors.PermanentError),
        (errors.TransformError("bad"), errors.PermanentError),
        (state_base.StateValueTooLargeError("big"), errors.PermanentError),
    ],
)
def test_what_to_do_next_follows_from_the_class(error: Exception, kind: type[Exception]) -> None:
    assert isinstance(error, kind)


def test_a_compile_error_names_its_path_and_reads_as_its_reason() -> None:
    exc = errors.ParamSpecError("spec.triggers[0].parameters[0]", "unknown dependency 'x'")
    assert str(exc) == "spec.triggers[0].parameters[0]: unknown dependency 'x'"
    assert [(p.path, p.message) for p in exc.problems] == [("spec.triggers[0].parameters[0]", "unknown dependency 'x'")]


def test_unused_classes_are_gone() -> None:
    assert not hasattr(errors, "FilterError") and not hasattr(errors, "ParameterError")

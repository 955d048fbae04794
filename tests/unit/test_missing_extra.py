"""A missing optional client is one clear line naming the extra to install, not a restart loop."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest
from knevents import errors

from tests.unit.sources_core.helpers import runtime


def test_the_extra_is_named_for_a_missing_client() -> None:
    found = errors.missing_extra(ModuleNotFoundError("No module named 'boto3'", name="boto3"))
    assert isinstance(found, errors.MissingExtraError) and isinstance(found, errors.PermanentError)
    assert (
        str(found)
        == "needs the optional package `boto3`: install knevents[aws] (pip install 'knevents[aws]')"
    )
    assert errors.missing_extra(ModuleNotFoundError("x", name="google.cloud.pubsub_v1")).extra == "gcp"  # type: ignore[union-attr]
    assert errors.missing_extra(ModuleNotFoundError("x", name="left_pad")) is None


async def test_an_sqs_source_without_boto3_stops_with_one_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in [m for m in sys.modules if m == "boto3" or m.startswith(("boto3.", "botocore"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "boto3", None)  # `import boto3` now fails as if it were not installed
    monkeypatch.setitem(sys.modules, "boto3.session", None)
    spec = {
        "sqs": {
            "jobs": {
                "region": "us-east-1",
                "queue": "jobs",
                "endpoint": "http://127.0.0.1:9",
                "waitTimeSeconds": 1,
            }
        }
    }
    rt, _ = runtime(spec)
    stop = asyncio.Event()
    with caplog.at_level(logging.ERROR, logger="knevents"):
        await asyncio.wait_for(rt.run_pull(stop), 30)  # returns: no restart loop
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert lines == [
        "event source stopped: needs the optional package `boto3`: install knevents[aws] "
        "(pip install 'knevents[aws]')"
    ]

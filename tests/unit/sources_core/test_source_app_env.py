"""The event-source function's wiring from the environment (no server)."""

from __future__ import annotations

import asyncio

from knevents import bus, web
from knevents.runtime import source_app

SPEC = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: cal}
spec:
  calendar:
    nightly: {schedule: "0 2 * * *"}
    often: {interval: 1h}
"""


def test_spec_inline_and_publisher_choice() -> None:
    app = source_app.SourceApp.from_env({"KNEVENTS_SPEC": SPEC, "K_SINK": "http://broker/"})
    assert app.problem is None
    rt = app.runtime()
    assert isinstance(rt.publisher, bus.HttpSinkPublisher)
    assert sorted(rt.pull_entries()) == ["nightly", "often"]  # not on Knative: cron ticks in process
    jet = source_app.SourceApp.from_env({"KNEVENTS_SPEC": SPEC})
    assert isinstance(jet.runtime().publisher, bus.JetStreamPublisher)


def test_knative_leaves_cron_to_the_pingsource() -> None:
    app = source_app.SourceApp.from_env({"KNEVENTS_SPEC": SPEC, "K_SINK": "http://broker/", "K_SERVICE": "cal"})
    assert app.runtime().pull_entries() == ["often"]
    forced = source_app.SourceApp.from_env(
        {"KNEVENTS_SPEC": SPEC, "K_SINK": "http://b/", "K_SERVICE": "cal", "KNEVENTS_CALENDAR_IN_PROCESS": "true"})
    assert sorted(forced.runtime().pull_entries()) == ["nightly", "often"]


def test_missing_or_bad_spec_is_reported_not_raised() -> None:
    for env in ({}, {"KNEVENTS_SPEC": "kind: EventSource\nspec: {webhook: {x: {port: nope}}}"},
                {"KNEVENTS_SPEC": "/no/such/file.yaml"}, {"KNEVENTS_SPEC": SPEC, "KNEVENTS_PUBLISH_RETRIES": "x"}):
        app = source_app.SourceApp.from_env(env)
        assert app.problem
        health = asyncio.run(app.handle(web.Request("GET", "/health")))
        other = asyncio.run(app.handle(web.Request("POST", "/x")))
        assert health.status == 503
        assert other.status == 500
        assert b"Traceback" not in other.body

"""The web UI of `knevents run` in a real browser (Debian's chromium, driven by Playwright).

One runner serves the quickstart plus a folder with an AND sensor, a filtered
dependency and a trigger whose target is down (so its event is dead-lettered);
each test drives the page as a person would and reads what the page shows.
Screenshots go to the test's tmp dir, or to ``KNEVENTS_UI_SCREENSHOTS`` (the
ones under docs/ were taken this way).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from knevents.local.natsd import free_port

from tests.e2e import harness

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EXTRA = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {{name: gate-events}}
spec:
  webhook:
    a: {{port: "{port}", endpoint: /a, method: POST}}
    b: {{port: "{port}", endpoint: /b, method: POST}}
    checked: {{port: "{port}", endpoint: /checked, method: POST}}
    flaky: {{port: "{port}", endpoint: /flaky, method: POST}}
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: gate}}
spec:
  dependencies:
    - {{name: a, eventSourceName: gate-events, eventName: a}}
    - {{name: b, eventSourceName: gate-events, eventName: b}}
  triggers:
    - template: {{name: release, conditions: "a && b", log: {{}}}}
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: checker}}
spec:
  dependencies:
    - {{name: checked, eventSourceName: gate-events, eventName: checked,
       filters: {{data: [{{path: body.kind, type: string, value: [build]}}]}}}}
  triggers:
    - template: {{name: report, log: {{}}}}
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: flaky}}
spec:
  dependencies: [{{name: f, eventSourceName: gate-events, eventName: flaky}}]
  triggers:
    - template:
        name: call-down
        http: {{url: "http://127.0.0.1:{down}/hook", method: POST}}
      atLeastOnce: true
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("ui")
    port, ui_port, down = free_port(), free_port(), free_port()
    folder = harness.prepare("quickstart", tmp / "m", {'"12000"': f'"{port}"'})
    (folder / "extra.yaml").write_text(EXTRA.format(port=port, down=down))
    runner = harness.RunnerProcess([folder], tmp / "state", harness.knevents_env(tmp),
                                   ["--ui-port", str(ui_port), "--max-deliveries", "2", "--retry-backoff", "0.1"])
    runner.start()
    runner.wait_for(lambda r: "ui" in r, "the web UI line")
    yield {"runner": runner, "port": port, "ui": f"http://127.0.0.1:{ui_port}/", "down": down, "tmp": tmp}
    runner.kill()


@pytest.fixture(scope="module")
def browser(site: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
            "--no-first-run", "--disable-component-update", "--disable-sync"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, site: dict[str, Any]) -> Iterator[Any]:
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    tab.goto(site["ui"])
    tab.wait_for_selector("#graph g.node")
    tab.wait_for_selector("body[data-live='1']")  # following the live stream
    yield tab
    tab.close()


def _post(site: dict[str, Any], path: str, body: object) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{site['port']}{path}", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def _shot(page: Any, site: dict[str, Any], name: str) -> None:
    where = Path(os.environ.get("KNEVENTS_UI_SCREENSHOTS") or site["tmp"])
    page.screenshot(path=str(where / f"ui-{name}.png"), full_page=True)


def test_flow_graph_shows_sources_sensors_and_triggers(page: Any) -> None:
    graph = page.inner_text("#flow")
    for name in ("webhook/build", "webhook-build", "build-sensor", "trigger-workflow",
                 "gate-events/a", "gate", "release", "checker", "report"):
        assert name in graph


def test_a_posted_event_appears_live_and_its_story_shows_the_workflow(page: Any, site: dict[str, Any]) -> None:
    _post(site, "/build", {"project": "kubedojo", "branch": "main", "commit": "abc123"})
    row = page.wait_for_selector("#events tbody tr:has-text('kubedojo')")  # no reload: the live stream
    assert "webhook/build" in row.inner_text()
    row.click()
    page.wait_for_selector("#story .sensor-story")
    story = page.inner_text("#story")
    assert "sensor build-sensor" in story and "passed its filters" in story
    assert "fires trigger-workflow" in story and '"value": "kubedojo"' in story
    page.wait_for_selector("#firings li:has-text('build-sensor/trigger-workflow')")
    page.wait_for_selector("#flow g.node:has-text('1 fired')")
    html = page.content()
    assert "build-sensor" in html and "trigger-workflow" in html and "kubedojo" in html
    _shot(page, site, "quickstart")


def test_a_filtered_event_shows_which_filter_failed(page: Any, site: dict[str, Any]) -> None:
    _post(site, "/checked", {"kind": "skip"})
    page.wait_for_selector("#events tbody tr:has-text('skip')").click()
    page.wait_for_selector("#story .sensor-story")
    story = page.inner_text("#story")
    assert "sensor checker" in story and "filtered out" in story and "body.kind" in story
    page.wait_for_selector("#flow g.node:has-text('1 filtered')")


def test_an_and_sensor_shows_what_it_holds_and_waits_for(page: Any, site: dict[str, Any]) -> None:
    _post(site, "/a", {"step": 1})
    item = page.wait_for_selector("#state li[data-trigger='gate/release']:has-text('has a')")
    text = item.inner_text()
    assert "a && b" in text and "waiting for b" in text
    _shot(page, site, "and-waiting")


def test_a_dead_letter_replayed_from_the_page_fires(page: Any, site: dict[str, Any]) -> None:
    _post(site, "/flaky", {"attempt": "first"})
    item = page.wait_for_selector("#deadletters li:has-text('flaky')", timeout=30_000)
    assert "gate-events/flaky" in item.inner_text()
    _shot(page, site, "dead-letter")
    sink = harness.Sink(port=site["down"])  # the target comes back
    try:
        item.query_selector("button.replay").click()
        [request] = sink.wait(1)
        assert request.path == "/hook"
        assert request.headers["knevents-event-ids"] in item.inner_text()  # the very event that was dead-lettered
        page.wait_for_selector("#firings li.ok:has-text('flaky/call-down')")
        page.wait_for_selector("#deadletters li:has-text('flaky')", state="detached")
    finally:
        sink.close()


def test_actions_need_the_page_token_and_loopback_host(site: dict[str, Any]) -> None:
    refused = urllib.request.Request(site["ui"] + "api/replay", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(refused, timeout=10)
    missing.value.close()
    assert missing.value.code == 403
    rebound = urllib.request.Request(site["ui"] + "api/graph", headers={"host": "attacker.example:80"})
    with pytest.raises(urllib.error.HTTPError) as foreign:
        urllib.request.urlopen(rebound, timeout=10)
    foreign.value.close()
    assert foreign.value.code == 403

"""The sensor function's wiring (spec from the environment, store choice, /health, /metrics), in process."""

from __future__ import annotations

import json
from pathlib import Path

from knevents import events, web
from knevents.runtime import sensor_app
from knevents.state import memory

from tests.fixtures.ports import connections_to
from tests.integration.sensor_runtime import pipeline_support as sup
from tests.integration.triggers.http_target import HttpTarget


def _post(event: events.Event) -> web.Request:
    msg = events.to_binary(event)
    return web.Request("POST", "/", web.Headers(msg.headers), msg.body)


async def test_inline_spec_without_nats_runs_on_the_memory_store() -> None:
    text = sup.SINGLE_SENSOR.replace("{url}", "http://127.0.0.1:9/x").replace("{extra}", "")
    app = sensor_app.SensorApp.from_env({"KNEVENTS_SPEC": text, "KNEVENTS_LOG_LEVEL": "warning"})
    assert app.runtime is not None and isinstance(app.runtime._store, memory.MemoryStore)
    health = await app.handle(web.Request("GET", "/health"))
    assert health.status == 200
    answer = await app.handle(_post(sup.event("a", -3)))  # filtered out: no trigger call needed
    assert answer.status == 200 and json.loads(answer.body)["filtered"] == ["a"]
    metrics = await app.handle(web.Request("GET", "/metrics"))
    assert metrics.status == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert b"knevents_sensor_events_filtered_total" in metrics.body


async def test_spec_from_a_path(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "sensor.yaml"
    path.write_text(sup.AND_SENSOR.replace("{url}", "http://127.0.0.1:9/x").replace("{extra}", ""))
    app = sensor_app.SensorApp.from_env({"KNEVENTS_SPEC": str(path)})
    assert app.runtime is not None and app.runtime.name == "pair" and app.runtime.namespace == "test"


async def test_a_bad_spec_keeps_the_process_up_and_says_why() -> None:
    app = sensor_app.SensorApp.from_env(
        {"KNEVENTS_SPEC": "apiVersion: argoproj.io/v1alpha1\nkind: Sensor\nmetadata: {name: x}\nspec: {}\n"}
    )
    health = await app.handle(web.Request("GET", "/health"))
    assert health.status == 503 and b"dependencies" in health.body
    answer = await app.handle(_post(sup.event("a", 1)))
    assert answer.status == 500 and b"misconfigured" in answer.body and b"Traceback" not in answer.body


async def test_missing_spec_and_bad_settings_are_named() -> None:
    app = sensor_app.SensorApp.from_env({})
    assert app.runtime is None and app.problem is not None and "KNEVENTS_SPEC is not set" in app.problem
    text = sup.SINGLE_SENSOR.replace("{url}", "http://127.0.0.1:9/x").replace("{extra}", "")
    app = sensor_app.SensorApp.from_env({"KNEVENTS_SPEC": text, "KNEVENTS_DEDUPE_TTL": "ten"})
    assert app.problem is not None and "KNEVENTS_DEDUPE_TTL" in app.problem


def test_loop_thread_runs_coroutines_from_any_thread() -> None:
    import threading

    loop = sensor_app.LoopThread()

    async def which() -> str:
        return threading.current_thread().name

    results: list[str] = []
    workers = [threading.Thread(target=lambda: results.append(loop.run(which()))) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert results == ["knevents-loop"] * 4


def test_the_loop_thread_closes_the_trigger_connections_of_its_loop_when_it_closes(tmp_path: Path) -> None:
    """The synchronous target's loop thread ends as ``asyncio.run`` does (at exit: ``atexit``): the http
    trigger's kept-alive connection is closed, not left to the end of the process."""
    target = HttpTarget(tmp_path).start()
    try:
        port = int(target.url().split(":")[2].split("/")[0])
        text = sup.SINGLE_SENSOR.replace("{url}", target.url()).replace("{extra}", "")
        app = sensor_app.SensorApp.from_env({"KNEVENTS_SPEC": text, "KNEVENTS_LOG_LEVEL": "warning"})
        loop = sensor_app.LoopThread()
        answer = loop.run(app.handle(_post(sup.event("a", 1))), timeout=60)
        assert answer.status == 200 and len(target.seen) == 1
        assert connections_to(port) == 1  # kept alive in the loop's pool
        loop.close()
        assert connections_to(port) == 0
    finally:
        target.close()

"""The sensor pipeline with the in-memory store and an injected ``fire``: Argo semantics, outbox, dedupe."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from knevents import errors, events, web
from knevents.runtime import sensor_record
from knevents.runtime.sensor import SensorRuntime
from knevents.secrets import SecretResolver
from knevents.settings import Settings
from knevents.state import base, memory

from tests.integration.sensor_runtime import pipeline_support as sup


class _Crash(BaseException):
    """Stands for the process dying in the middle of a trigger."""


def _runtime(sensor: object, store: base.StateStore, fire: sup.Recorder, **kw: object) -> SensorRuntime:
    return SensorRuntime(sensor, store, settings=Settings(), secrets=SecretResolver(env={}), fire=fire, **kw)  # type: ignore[arg-type]


async def test_single_dependency_fires_once_per_passing_event() -> None:
    fire = sup.Recorder()
    rt = _runtime(sup.sensor(sup.SINGLE_SENSOR), memory.MemoryStore(), fire)
    out = await rt.process(sup.event("a", 1))
    assert out.status == 200 and [f.trigger for f in out.fired] == ["one"]
    out = await rt.process(sup.event("a", -1))  # filtered out by the data filter
    assert out.filtered == ("a",) and not out.fired
    await rt.process(sup.event("other", 2))  # no dependency matches
    assert fire.fired() == [{"a": "1"}]


async def test_and_condition_fires_with_both_events_then_starts_over() -> None:
    fire = sup.Recorder()
    rt = _runtime(sup.sensor(sup.AND_SENSOR), memory.MemoryStore(), fire)
    first = await rt.process(sup.event("a", 1))
    assert first.waiting == ("both",) and not first.fired
    await rt.process(sup.event("a", 2))  # the newest event per dependency replaces the older one
    done = await rt.process(sup.event("b", 3))
    assert [f.trigger for f in done.fired] == ["both"]
    assert fire.fired() == [{"a": "2", "b": "3"}]
    await rt.process(sup.event("b", 4))  # state was cleared after firing
    assert len(fire.calls) == 1


async def test_same_event_id_twice_fires_once() -> None:
    fire = sup.Recorder()
    rt = _runtime(sup.sensor(sup.SINGLE_SENSOR), memory.MemoryStore(), fire)
    ev = sup.event("a", 1)
    await rt.process(ev)
    again = await rt.process(ev)
    assert again.duplicate and len(fire.calls) == 1


async def test_a_replayed_event_fires_again_but_a_redelivered_replay_does_not() -> None:
    import dataclasses

    fire = sup.Recorder()
    rt = _runtime(sup.sensor(sup.SINGLE_SENSOR), memory.MemoryStore(), fire)
    ev = sup.event("a", 1)
    await rt.process(ev)
    replayed = dataclasses.replace(ev, extensions={**ev.extensions, "knreplay": "r1"})
    assert [f.trigger for f in (await rt.process(replayed)).fired] == ["one"]  # same id, asked for again
    assert (await rt.process(replayed)).duplicate  # the same replay delivered twice: once
    assert len(fire.calls) == 2


async def test_first_delivery_skips_the_dedupe_read_redeliveries_do_not() -> None:
    fire = sup.Recorder()
    rt = _runtime(sup.sensor(sup.SINGLE_SENSOR), memory.MemoryStore(), fire)
    ev = sup.event("a", 1)
    await rt.process(ev, first_delivery=True)
    assert (await rt.process(ev)).duplicate  # a redelivery (count > 1 or unknown) reads what the first wrote
    assert len(fire.calls) == 1


async def test_an_at_most_once_trigger_does_not_run_again_for_an_event_counted_first_twice() -> None:
    # a nats-server killed and restarted can roll its consumer's delivery counts back: an event the sensor
    # already processed comes back counted as a first delivery
    fire = sup.Recorder()
    rt = _runtime(sup.sensor(sup.SINGLE_SENSOR), memory.MemoryStore(), fire)
    ev = sup.event("a", 1)
    await rt.process(ev, first_delivery=True)
    assert (await rt.process(ev, first_delivery=True)).duplicate
    assert len(fire.calls) == 1


async def test_crash_after_the_satisfying_write_is_finished_by_the_redelivery_on_another_replica() -> None:
    # atLeastOnce: the firing stays in the outbox until the trigger succeeded, so a crash inside it re-runs it
    store = memory.MemoryStore()
    sensor = sup.sensor(sup.AND_SENSOR, extra="atLeastOnce: true")

    def crash(_: object) -> None:
        raise _Crash

    dying = _runtime(sensor, store, sup.Recorder(fail_with=crash))  # type: ignore[arg-type]
    await dying.process(sup.event("a", 1))
    satisfying = sup.event("b", 2)
    with pytest.raises(_Crash):
        await dying.process(satisfying)
    fire = sup.Recorder()
    other = _runtime(sensor, store, fire)
    out = await other.process(satisfying)  # the broker redelivers to another replica
    assert [f.trigger for f in out.fired] == ["both"] and fire.fired() == [{"a": "1", "b": "2"}]
    await other.process(satisfying)  # and once more: nothing left to do
    await other.process(sup.event("a", 3))  # the redelivered b was not saved a second time
    assert len(fire.calls) == 1
    bucket = await store.bucket(base.bucket_name("test", "pair"))
    entry = await bucket.get(base.kv_key("both"))
    assert entry is not None and sensor_record.decode(entry.value).outbox == ()


async def test_at_most_once_and_trigger_that_crashed_while_running_is_not_run_again() -> None:
    # Argo's default: the firing is taken out of the outbox before the trigger runs
    store = memory.MemoryStore()
    sensor = sup.sensor(sup.AND_SENSOR)

    def crash(_: object) -> None:
        raise _Crash

    dying = _runtime(sensor, store, sup.Recorder(fail_with=crash))  # type: ignore[arg-type]
    await dying.process(sup.event("a", 1))
    satisfying = sup.event("b", 2)
    with pytest.raises(_Crash):
        await dying.process(satisfying)
    fire = sup.Recorder()
    other = _runtime(sensor, store, fire)
    out = await other.process(satisfying)  # the broker redelivers to another replica
    assert out.fired == () and fire.calls == []
    entry = await (await store.bucket(base.bucket_name("test", "pair"))).get(base.kv_key("both"))
    assert entry is not None and sensor_record.decode(entry.value).outbox == ()


async def test_at_most_once_stateless_trigger_that_crashed_is_not_run_again() -> None:
    store = memory.MemoryStore()
    sensor = sup.sensor(sup.SINGLE_SENSOR)

    def crash(_: object) -> None:
        raise _Crash

    fire, out = await _crash_then_redeliver(sensor, store, crash, sup.event("a", 1))
    # its only firing was taken before the crash: the take was the event's final "done" mark, so the
    # redelivery is a duplicate (with another trigger still to run it would be read as a partial take)
    assert out.fired == () and fire.calls == [] and out.duplicate


async def test_a_crash_in_the_at_most_once_trigger_leaves_the_at_least_once_one_to_the_redelivery() -> None:
    # two triggers on one event: the take is not the final mark, the redelivery reads it as partial
    second = """# a second trigger, atLeastOnce; the first stays at-most-once
    - template:
        name: two
        http: {url: "http://127.0.0.1:9/two", method: POST}
      atLeastOnce: true"""
    sensor = sup.sensor(sup.SINGLE_SENSOR, extra=second)
    store = memory.MemoryStore()

    def crash(resolved: object) -> None:
        if getattr(resolved, "trigger", "") == "one":
            raise _Crash

    event = sup.event("a", 1)
    fire, out = await _crash_then_redeliver(sensor, store, crash, event)
    assert [r.trigger for r, _ in fire.calls] == ["two"] and not out.duplicate
    again = await _runtime(sensor, store, fire).process(event)
    assert again.duplicate and len(fire.calls) == 1


async def _crash_then_redeliver(sensor: Any, store: memory.MemoryStore, crash: Callable[[Any], None],
                                event: events.Event) -> tuple[sup.Recorder, Any]:
    """A firing raises in ``crash`` (the process dies there); the same event is then delivered again to a fresh
    runtime on the same store. The second runtime's recorder and its outcome."""
    with pytest.raises(_Crash):
        await _runtime(sensor, store, sup.Recorder(fail_with=crash)).process(event)
    fire = sup.Recorder()
    return fire, await _runtime(sensor, store, fire).process(event)


async def test_at_least_once_stateless_trigger_that_crashed_runs_again() -> None:
    store = memory.MemoryStore()
    sensor = sup.sensor(sup.SINGLE_SENSOR, extra="atLeastOnce: true")

    def crash(_: object) -> None:
        raise _Crash

    fire, out = await _crash_then_redeliver(sensor, store, crash, sup.event("a", 1))
    assert len(out.fired) == 1 and len(fire.calls) == 1


async def test_at_least_once_failure_asks_for_redelivery_and_keeps_the_firing() -> None:
    store = memory.MemoryStore()
    sensor = sup.sensor(sup.AND_SENSOR, extra="atLeastOnce: true")
    failing = sup.Recorder(fail_with=lambda _: errors.TriggerRetryableError("sink answered 503"))
    rt = _runtime(sensor, store, failing)
    await rt.process(sup.event("a", 1))
    b = sup.event("b", 2)
    out = await rt.process(b)
    assert out.status == 503 and out.retry and out.failed[0].trigger == "both"
    fire = sup.Recorder()
    out = await _runtime(sensor, store, fire).process(b)
    assert out.status == 200 and fire.fired() == [{"a": "1", "b": "2"}]


async def test_at_most_once_failure_is_logged_and_answered_2xx() -> None:
    failing = sup.Recorder(fail_with=lambda _: errors.TriggerRetryableError("sink answered 503"))
    rt = _runtime(sup.sensor(sup.AND_SENSOR), memory.MemoryStore(), failing)
    await rt.process(sup.event("a", 1))
    out = await rt.process(sup.event("b", 2))
    assert out.status == 200 and out.failed and not out.retry
    await rt.process(sup.event("b", 3))  # the failed firing is not retried by later events
    assert len(failing.calls) == 1


async def test_dlq_trigger_gets_the_events_when_an_at_least_once_trigger_fails() -> None:
    extra = """atLeastOnce: true
      dlqTrigger:
        atLeastOnce: true
        template:
          name: dead-letter
          http:
            url: http://127.0.0.1:9/dlq
            method: POST
            payload:
              - {src: {dependencyName: a, dataKey: body.n}, dest: a}"""
    fire = sup.Recorder(
        fail_with=lambda r: errors.TriggerError("400 from sink") if r.trigger == "both" else None
    )
    rt = _runtime(sup.sensor(sup.AND_SENSOR, extra=extra), memory.MemoryStore(), fire)
    await rt.process(sup.event("a", 7))
    out = await rt.process(sup.event("b", 8))
    assert out.status == 200
    assert [r.trigger for r, _ in fire.calls] == ["both", "dead-letter"]
    assert fire.fired("dead-letter") == [{"a": "7"}]
    assert out.failed[0].dlq is not None and out.failed[0].dlq.startswith("ok")


async def test_a_changed_trigger_spec_purges_the_saved_state() -> None:
    store = memory.MemoryStore()
    old = sup.sensor(sup.AND_SENSOR)
    await _runtime(old, store, sup.Recorder()).process(sup.event("a", 1))
    changed = sup.sensor(sup.AND_SENSOR.replace("eventName: a}", "eventName: a2}"))
    fire = sup.Recorder()
    rt = _runtime(changed, store, fire)
    await rt.process(sup.event("b", 2))
    assert fire.calls == []  # a's saved event belonged to the old spec
    await rt.process(sup.event("a2", 3))
    assert fire.fired() == [{"a": "3", "b": "2"}]


async def test_conditions_reset_drops_events_saved_before_the_last_tick() -> None:
    extra_reset = 'conditionsReset:\n          - byTime: {cron: "0 * * * *"}'
    text = sup.AND_SENSOR.replace('conditions: "a && b"', 'conditions: "a && b"\n        ' + extra_reset)
    now = [datetime(2026, 1, 1, 10, 59, tzinfo=UTC).timestamp()]
    fire = sup.Recorder()
    rt = _runtime(sup.sensor(text), memory.MemoryStore(), fire, clock=lambda: now[0])
    await rt.process(sup.event("a", 1))
    now[0] += 120  # 11:01: the hourly reset ticked at 11:00
    await rt.process(sup.event("b", 2))
    assert fire.calls == []
    await rt.process(sup.event("a", 3))
    assert fire.fired() == [{"a": "3", "b": "2"}]


async def test_traceparent_reaches_the_trigger_context() -> None:
    fire = sup.Recorder()
    rt = _runtime(sup.sensor(sup.SINGLE_SENSOR), memory.MemoryStore(), fire)
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    await rt.process(sup.event("a", 1, traceparent=tp))
    assert fire.calls[0][1].traceparent == tp and fire.calls[0][1].sensor_name == "single"


async def test_handle_answers_by_the_knative_delivery_contract() -> None:
    fire = sup.Recorder()
    rt = _runtime(sup.sensor(sup.SINGLE_SENSOR), memory.MemoryStore(), fire)
    binary = events.to_binary(sup.event("a", 1))
    ok = await rt.handle(web.Request("POST", "/", web.Headers(binary.headers), binary.body))
    assert ok.status == 200 and json.loads(ok.body)["fired"][0]["trigger"] == "one"
    structured = events.to_structured(sup.event("a", 2))
    ok = await rt.handle(web.Request("POST", "/", web.Headers(structured.headers), structured.body))
    assert ok.status == 200 and len(fire.calls) == 2
    bad = await rt.handle(web.Request("POST", "/", web.Headers({"content-type": "application/json"}), b"{}"))
    assert bad.status == 400 and b"ce-specversion" in bad.body
    missing = await rt.handle(
        web.Request("POST", "/", web.Headers({"ce-specversion": "1.0", "ce-id": "x"}), b"")
    )
    assert missing.status == 400 and b"ce-source" in missing.body
    assert (await rt.handle(web.Request("GET", "/"))).status == 405


class _DownStore:
    async def bucket(self, name: str, *, ttl: float | None = None) -> base.Bucket:
        raise errors.StateUnavailableError("NATS at nats://127.0.0.1:1 is unreachable")

    async def close(self) -> None:
        return None


async def test_state_store_down_is_503_and_the_trigger_does_not_run() -> None:
    fire = sup.Recorder()
    rt = _runtime(sup.sensor(sup.SINGLE_SENSOR), _DownStore(), fire)
    msg = events.to_binary(sup.event("a", 1))
    answer = await rt.handle(web.Request("POST", "/", web.Headers(msg.headers), msg.body))
    assert answer.status == 503 and b"unreachable" in answer.body and fire.calls == []


async def test_oversized_state_is_dropped_with_a_clear_error_not_retried() -> None:
    rt = _runtime(sup.sensor(sup.AND_SENSOR), memory.MemoryStore(max_value_size=300), sup.Recorder())
    big = dataclasses.replace(
        sup.event("a", 1), data=json.dumps({"body": {"n": 1, "pad": "x" * 1000}}).encode()
    )
    msg = events.to_binary(big)
    answer = await rt.handle(web.Request("POST", "/", web.Headers(msg.headers), msg.body))
    assert answer.status == 200 and b"at most 300" in answer.body

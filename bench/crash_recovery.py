"""How long a local crash takes to recover: the event a killed ``knevents run`` held fires again.

An ``atLeastOnce`` HTTP trigger fails once (its sink answers 503), the runner is SIGKILLed while the
trigger is in backoff, and ``knevents run`` is started again at once on the same state dir. Two crashes:
the runner process alone (its nats-server lives on and is stopped by the new runner) and the runner
with its nats-server. Prints seconds from the kill to the firing, and from the restart to the firing.

    python bench/crash_recovery.py
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knevents.local.natsd import free_port

from tests.e2e import harness
from tests.e2e.test_e2e_runner_delivery import _ES, _sensor


def measure(mode: str) -> dict[str, object]:
    """One crash and recovery; ``mode`` is ``runner-only`` or ``runner-and-nats``."""
    tmp = Path(tempfile.mkdtemp(prefix="knevents-crash-"))
    answers = iter([503])
    sink = harness.Sink(lambda r: next(answers, 200))
    try:
        port = free_port()
        manifests = tmp / "m"
        manifests.mkdir()
        (manifests / "es.yaml").write_text(_ES.format(port=port))
        sensor = yaml.safe_load(_sensor("atleastonce", "fail", sink.url + "/t"))
        sensor["spec"]["triggers"][0]["template"]["http"]["method"] = "POST"
        (manifests / "sensor.yaml").write_text(yaml.safe_dump(sensor))
        env = harness.knevents_env(tmp)
        first = harness.RunnerProcess([manifests], tmp / "state", env).start()
        harness.cli(["send", "--url", f"http://127.0.0.1:{port}/example", "--data", "{}"], env, tmp)
        sink.wait(1)
        killed = time.monotonic()
        if mode == "runner-only":
            assert first.proc is not None
            os.killpg(first.proc.pid, signal.SIGKILL)
            first.proc.wait()
        else:
            first.kill()
        second = harness.RunnerProcess([manifests], tmp / "state", env).start()
        restarted = time.monotonic()
        second.wait_for(lambda r: r.get("tag") == "fired", "the redelivered event's firing", timeout=60)
        fired = time.monotonic()
        second.stop()
        second.kill()
        return {
            "crash": mode,
            "kill_to_fired_s": round(fired - killed, 2),
            "restart_to_fired_s": round(fired - restarted, 2),
        }
    finally:
        sink.close()


if __name__ == "__main__":
    print(json.dumps([measure("runner-only"), measure("runner-and-nats")], indent=2))

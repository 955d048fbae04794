"""`knevents run --workers 2`: a trigger's rateLimit holds for the sensor, not per worker process.

Only a lower bound on elapsed time is asserted: a loaded machine can make the firings later, never earlier
than their slots. Two workers pacing the trigger each on its own would finish in about half the time.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from knevents.local.natsd import free_port

from tests.e2e import harness

MANIFESTS = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {{name: hooks}}
spec:
  webhook:
    one: {{port: "{port}", endpoint: /one, method: POST}}
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: paced}}
spec:
  dependencies: [{{name: one, eventSourceName: hooks, eventName: one}}]
  triggers:
    - template:
        name: slow
        http:
          url: {sink}/slow
          method: POST
          payload: [{{src: {{dependencyName: one, dataKey: body.n}}, dest: n}}]
      rateLimit: {{unit: Second, requestsPerUnit: {rate}}}
"""

RATE = 4
COUNT = 8


def test_two_workers_fire_a_rate_limited_trigger_at_the_sensor_rate(tmp_path: Path) -> None:
    arrived: list[float] = []

    def record(_: harness.Received) -> int:
        arrived.append(time.time())
        return 200

    sink = harness.Sink(record)
    port = free_port()
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "all.yaml").write_text(MANIFESTS.format(port=port, sink=sink.url, rate=RATE))
    process = harness.RunnerProcess([folder], tmp_path / "state", harness.knevents_env(tmp_path),
                                    ["--workers", "2"]).start()
    try:
        process.wait_for(lambda r: r.get("worker") == 1 and "pid" in r, "worker 1 ready")
        started = time.time()
        for n in range(COUNT):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/one", data=json.dumps({"n": n}).encode(),
                                             headers={"content-type": "application/json"}, method="POST")
            with urllib.request.urlopen(request, timeout=30) as answer:
                assert answer.status == 200
        got = sink.wait(COUNT, lambda r: r.path == "/slow", timeout=60)
    finally:
        process.kill()
        sink.close()
    assert sorted(int(r.json()["n"]) for r in got) == list(range(COUNT))
    # the sensor's slots are one every 1/RATE s from the first, shared by both workers
    assert max(arrived) - started >= (COUNT - 1) / RATE - 0.05

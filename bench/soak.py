"""Soak: the sensor function at 50 % of its measured capacity for a long while (a benchmark, not a test).

    python bench/soak.py                 # 10 minutes
    python bench/soak.py --minutes 2     # shorter

First measures the function's capacity (closed loop, a few seconds), then
offers half of it, open loop, for the whole duration, sampling the process's
resident memory and the latency per window. Reports the RSS slope (MiB per
minute, least squares) and the latency drift (p50/p99 of the last window over
the first). The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

SENSOR = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: soak}
spec:
  dependencies:
    - {name: a, eventSourceName: webhook, eventName: a}
    - {name: b, eventSourceName: webhook, eventName: b}
  triggers:
    - template:
        name: pair
        conditions: a && b
        log: {}
"""


def _requests(port: int, start: int, count: int) -> bytes:
    out = []
    for i in range(start, start + count):
        subject = "a" if i % 2 == 0 else "b"
        headers = {"ce-specversion": "1.0", "ce-id": f"soak-{i}", "ce-source": "webhook", "ce-type": "webhook",
                   "ce-subject": subject, "content-type": "application/json"}
        out.append(common.http_request("/", b'{"body": {"n": 1}}', headers, port))
    return b"".join(out)


def _slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--window", type=float, default=20.0, help="seconds per sample window")
    args = parser.parse_args()

    from knevents.local.natsd import NatsServer

    with tempfile.TemporaryDirectory() as tmp, NatsServer(store_dir=Path(tmp) / "nats") as nats:
        spec = Path(tmp) / "sensor.yaml"
        spec.write_text(SENSOR)
        env = {"KNEVENTS_SPEC": str(spec), "KNEVENTS_NATS_URL": nats.url, "KNEVENTS_LOG_LEVEL": "WARNING"}
        proc = common.start_function(common.ROOT / "functions/sensor/main.py", "sensor_async", env, asgi=True)
        try:
            common.wait_port(proc.port)
            seq = 0

            def batch(n: int, rate: float | None) -> common.LoadResult:
                nonlocal seq
                # One request template per event id; the load generator repeats one request, so send
                # windows of distinct ids by building a pipeline per connection.
                result = common.load_many(proc.port, [_requests(proc.port, seq + i, 1) for i in range(n)],
                                          concurrency=8, rate=rate)
                seq += n
                return result

            capacity = batch(3000, None).rps
            rate = capacity / 2
            print(f"capacity ≈ {capacity:.0f} req/s; soaking at {rate:.0f} req/s for {args.minutes} min", flush=True)
            samples: list[tuple[float, float, float, float]] = []
            started = time.monotonic()
            while time.monotonic() - started < args.minutes * 60:
                n = max(16, int(rate * args.window))
                result = batch(n, rate)
                elapsed = (time.monotonic() - started) / 60
                rss = common.rss_mb(proc.popen.pid)
                samples.append((elapsed, rss, result.p(50), result.p(99)))
                print(f"t={elapsed:5.1f} min  rss={rss:6.1f} MiB  p50={result.p(50):6.2f} ms  "
                      f"p99={result.p(99):6.2f} ms  errors={len(result.errors)}", flush=True)
        finally:
            proc.stop()
    xs = [s[0] for s in samples]
    slope = _slope(xs, [s[1] for s in samples])
    first, last = samples[0], samples[-1]
    print(json.dumps({
        "bench": "soak", "minutes": args.minutes, "capacity_rps": round(capacity, 1), "offered_rps": round(rate, 1),
        "rss_start_mb": round(first[1], 1), "rss_end_mb": round(last[1], 1),
        "rss_slope_mb_per_min": round(slope, 3),
        "p50_first_ms": round(first[2], 2), "p50_last_ms": round(last[2], 2),
        "p99_first_ms": round(first[3], 2), "p99_last_ms": round(last[3], 2),
        "p99_drift": round(last[3] / first[3], 2) if first[3] else None,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

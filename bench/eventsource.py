"""Event-source function throughput and cold start, beside a no-op functions-framework function.

    python bench/eventsource.py            # full run
    python bench/eventsource.py --quick    # under a minute

Measured in one run on the same machine (figures are also printed as ratios,
because these machines are shared and noisy):

* ``noop``      — an async functions-framework HTTP function that returns "" (ASGI), the baseline;
* ``webhook→js``   — the webhook event source (ASGI target, the one Knative runs) publishing each
  request to JetStream on a real nats-server and answering after the ack;
* ``webhook→sink`` — the same publishing to an HTTP sink (``K_SINK``, a raw asyncio server in its
  own process standing in for the broker ingress);
* ``webhook→js (wsgi)`` — the synchronous target, for comparison;
* ``… [thin]`` — the same two ASGI cases served by the thin entry (``python -m
  knevents.deploy.entrypoint`` with ``KNEVENTS_SERVER=knevents``: one uvicorn process, no
  Starlette), run next to their functions-framework twins (A B B A order, to spread drift);
* cold start — exec of the image's entry point → first 2xx of a webhook POST (median of runs),
  functions-framework and the thin entry taking turns; the no-op's cold start; and a ``slack``
  source's (a signed Events API callback: HMAC-SHA256 check, provider payload) — the
  provider-webhook types scale to zero, so their first answer matters;
* CPU per request of the function's processes (from /proc), steadier than req/s on a shared machine;
* ``--pairs N`` — then N more rounds of the thin entry and functions-framework taking turns (CPU per
  request at 300/s only), the A/B that is steady on a busy machine.

The load generator uses keep-alive connections (``bench.common.load``). The last
line printed is JSON:
``{"bench": "eventsource", "noop_rps": N, "webhook_rps": N, "webhook_ratio": x, "cold_start_s": N, ...,
"cpu_ms_per_request": {case: ms at 300/s}}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

ROOT = common.ROOT
SOURCE_MAIN = ROOT / "functions" / "eventsource" / "main.py"
SPEC = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: webhook}
spec:
  webhook:
    example: {port: "12000", endpoint: /example, method: POST}
"""
NOOP = '''
async def noop(request):
    return ""
'''
SLACK_SPEC = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: slack}
spec:
  slack:
    example:
      webhook: {port: "12000", endpoint: /slack, method: POST}
      signingSecret: {name: slack-secret, key: signingSecret}
"""
SLACK_SECRET = "bench-slack-signing-secret"
SLACK_BODY = json.dumps({"type": "event_callback", "event_id": "Ev0BENCH", "team_id": "T0",
                         "event": {"type": "app_mention", "user": "U0", "text": "hello", "ts": "1.0"}}).encode()
BODY = json.dumps({"message": "hello", "n": 1, "items": list(range(20))}).encode()
HEADERS = {"Content-Type": "application/json"}


async def _sink(port: int) -> None:
    """Answer 202 to every request, keep-alive, as fast as asyncio allows."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = 0
                line = await reader.readline()
                if not line:
                    return
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                if length:
                    await reader.readexactly(length)
                writer.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return

    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def _slack_request() -> tuple[bytes, dict[str, str]]:
    import hashlib
    import hmac

    stamp = str(int(time.time()))
    mac = hmac.new(SLACK_SECRET.encode(), f"v0:{stamp}:".encode() + SLACK_BODY, hashlib.sha256).hexdigest()
    return SLACK_BODY, {**HEADERS, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + mac}


def _plain_request() -> tuple[bytes, dict[str, str]]:
    return BODY, HEADERS


def _first_2xx(port: int, path: str, deadline: float, make: Any = _plain_request) -> bool:
    while time.monotonic() < deadline:
        try:
            body, headers = make()
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers)
            with urllib.request.urlopen(req, timeout=2) as resp:
                if 200 <= resp.status < 300:
                    return True
        except OSError:
            time.sleep(0.005)
    return False


def _throughput(name: str, proc: common.Proc, path: str, warmup: int, total: int, concurrency: int) -> dict[str, Any]:
    try:
        if not _first_2xx(proc.port, path, time.monotonic() + 60):
            return {"name": name, "error": "no 2xx within 60 s"}
        request = common.http_request(path, BODY, HEADERS, proc.port)
        common.load(proc.port, request, warmup, concurrency)
        cpu_before = common.cpu_seconds(proc.popen.pid)
        result = common.load(proc.port, request, total, concurrency)
        cpu_ms = (common.cpu_seconds(proc.popen.pid) - cpu_before) * 1000 / max(result.sent, 1)
        # at a fixed offered load (300/s): the figure that maps to cost and is stable on a busy machine
        paced_before = common.cpu_seconds(proc.popen.pid)
        paced = common.load(proc.port, request, 900, concurrency, rate=300.0)
        cpu_300 = (common.cpu_seconds(proc.popen.pid) - paced_before) * 1000 / max(paced.sent, 1)
        out = {"name": name, "rps": round(result.rps, 1), "p50_ms": round(result.p(50), 2),
               "p99_ms": round(result.p(99), 2), "errors": len(result.errors),
               "cpu_ms_per_request_closed_loop": round(cpu_ms, 3), "cpu_ms_per_request": round(cpu_300, 3),
               "rss_mb": round(common.rss_mb(proc.popen.pid), 1)}
        print(f"[eventsource] {name}: {out}", flush=True)
        return out
    finally:
        proc.stop()


def _paced_cpu(proc: common.Proc, path: str, warmup: int, concurrency: int) -> float:
    """CPU ms per request of ``proc`` at 300 requests/s (after a warm-up), nothing else."""
    try:
        if not _first_2xx(proc.port, path, time.monotonic() + 60):
            return float("nan")
        request = common.http_request(path, BODY, HEADERS, proc.port)
        common.load(proc.port, request, warmup, concurrency)
        before = common.cpu_seconds(proc.popen.pid)
        paced = common.load(proc.port, request, 900, concurrency, rate=300.0)
        return round((common.cpu_seconds(proc.popen.pid) - before) * 1000 / max(paced.sent, 1), 3)
    finally:
        proc.stop()


def _pairs(count: int, envs: dict[str, dict[str, str]], warmup: int, concurrency: int) -> dict[str, Any]:
    """``count`` rounds of the thin entry and functions-framework taking turns, per case: CPU at 300/s."""
    out: dict[str, dict[str, list[float]]] = {case: {"thin": [], "ff": []} for case in envs}
    for i in range(count):
        for case, env in envs.items():
            for server in ("thin", "ff") if i % 2 == 0 else ("ff", "thin"):
                cpu = _paced_cpu((_thin if server == "thin" else _ff)(env)(), "/example", warmup, concurrency)
                out[case][server].append(cpu)
                print(f"[eventsource] pair {i + 1} {case} {server}: CPU {cpu} ms/request at 300/s", flush=True)
    return out


def _cold_starts(starters: dict[str, Any], path: str, repeats: int,
                 make: Any = _plain_request) -> dict[str, float]:
    """Median exec → first 2xx of each starter; the starters take turns, so load drift hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in starters}
    for _ in range(repeats):
        for name, start in starters.items():
            started = time.monotonic()
            proc = start()
            try:
                if _first_2xx(proc.port, path, started + 30, make):
                    times[name].append(time.monotonic() - started)
            finally:
                proc.stop()
    return {name: round(common.percentile(t, 50), 3) if t else float("nan") for name, t in times.items()}


def _ff(env: dict[str, str]) -> Any:
    return lambda: common.start_function(SOURCE_MAIN, "handle_async", env, asgi=True)


def _thin(env: dict[str, str]) -> Any:
    return lambda: common.start_entry("eventsource", env, "knevents")


def _ff_entry(env: dict[str, str]) -> Any:
    """functions-framework as the image starts it (the entry point, ``KNEVENTS_SERVER=functions-framework``)."""
    return lambda: common.start_entry("eventsource", env, "functions-framework")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer requests and repeats (under a minute)")
    parser.add_argument("--pairs", type=int, default=0, metavar="N",
                        help="then N interleaved thin/functions-framework pairs per case, CPU per request at 300/s only")
    parser.add_argument("_sink", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("_port", nargs="?", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._sink == "_sink":
        asyncio.run(_sink(args._port))
        return
    total, warmup, concurrency, repeats = (1600, 160, 16, 2) if args.quick else (20000, 1000, 32, 7)

    from knevents.local.natsd import NatsServer

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="knevents-bench-") as tmp, NatsServer() as nats:
        spec = Path(tmp) / "es.yaml"
        spec.write_text(SPEC)
        slack_spec = Path(tmp) / "slack.yaml"
        slack_spec.write_text(SLACK_SPEC)
        noop = Path(tmp) / "noop.py"
        noop.write_text(NOOP)
        sink_port = common.free_port()
        sink = subprocess.Popen([sys.executable, __file__, "_sink", str(sink_port)])
        common.wait_port(sink_port)
        js_env = {"KNEVENTS_SPEC": str(spec), "KNEVENTS_NATS_URL": nats.url, "LOG_LEVEL": "warning"}
        sink_env = {"KNEVENTS_SPEC": str(spec), "K_SINK": f"http://127.0.0.1:{sink_port}/"}
        slack_env = {"KNEVENTS_SPEC": str(slack_spec), "K_SINK": f"http://127.0.0.1:{sink_port}/",
                     "KNEVENTS_SECRET_SLACK_SECRET_SIGNINGSECRET": SLACK_SECRET}
        try:
            noop_r = _throughput("noop", common.start_function(noop, "noop", asgi=True), "/", warmup, total,
                                 concurrency)
            js_r = _throughput("webhook→js", _ff(js_env)(), "/example", warmup, total, concurrency)
            js_thin = _throughput("webhook→js [thin]", _thin(js_env)(), "/example", warmup, total, concurrency)
            sink_thin = _throughput("webhook→sink [thin]", _thin(sink_env)(), "/example", warmup, total,
                                    concurrency)
            sink_r = _throughput("webhook→sink", _ff(sink_env)(), "/example", warmup, total, concurrency)
            wsgi_r: dict[str, Any] = {"name": "webhook→js (wsgi)", "skipped": "quick"}
            if not args.quick:
                wsgi_r = _throughput("webhook→js (wsgi)", common.start_function(SOURCE_MAIN, "handle", js_env),
                                     "/example", warmup, total, concurrency)
            results += [noop_r, js_r, js_thin, sink_r, sink_thin, wsgi_r]
            cold = _cold_starts({"ff": _ff_entry(sink_env), "thin": _thin(sink_env)}, "/example", repeats)
            cold_noop = _cold_starts({"noop": lambda: common.start_function(noop, "noop", asgi=True)}, "/",
                                     repeats)["noop"]
            cold_slack = _cold_starts({"ff": _ff_entry(slack_env), "thin": _thin(slack_env)}, "/slack", repeats,
                                      _slack_request)
            pairs = _pairs(args.pairs, {"webhook→js": js_env, "webhook→sink": sink_env}, warmup, concurrency)
        finally:
            sink.terminate()
            sink.wait()
    noop_rps = float(noop_r.get("rps", 0.0))
    webhook_rps = float(js_r.get("rps", 0.0))
    summary = {
        "bench": "eventsource",
        "noop_rps": noop_rps,
        "webhook_rps": webhook_rps,
        "webhook_ratio": round(webhook_rps / noop_rps, 3) if noop_rps else None,
        "webhook_sink_rps": sink_r.get("rps"),
        "webhook_sink_ratio": round(float(sink_r.get("rps", 0.0)) / noop_rps, 3) if noop_rps else None,
        "webhook_wsgi_rps": wsgi_r.get("rps"),
        "noop_cpu_ms": noop_r.get("cpu_ms_per_request"),
        "webhook_cpu_ms": js_r.get("cpu_ms_per_request"),
        "webhook_thin_cpu_ms": js_thin.get("cpu_ms_per_request"),
        "webhook_sink_cpu_ms": sink_r.get("cpu_ms_per_request"),
        "webhook_sink_thin_cpu_ms": sink_thin.get("cpu_ms_per_request"),
        "webhook_thin_rps": js_thin.get("rps"),
        "cold_start_s": cold["ff"],
        "cold_start_thin_s": cold["thin"],
        "noop_cold_start_s": cold_noop,
        "slack_cold_start_s": cold_slack["ff"],
        "slack_cold_start_thin_s": cold_slack["thin"],
        "cpu_ms_per_request": {r["name"]: r.get("cpu_ms_per_request") for r in results if "name" in r},
        "quick": args.quick,
        "pairs": pairs,
        "cases": results,
    }
    print(f"[eventsource] webhook→JetStream {webhook_rps} req/s = {summary['webhook_ratio']} × no-op; "
          f"CPU/request at 300/s: functions-framework {summary['webhook_cpu_ms']} ms, "
          f"thin {summary['webhook_thin_cpu_ms']} ms (no-op {summary['noop_cpu_ms']} ms); cold start "
          f"functions-framework {cold['ff']} s, thin {cold['thin']} s (no-op {cold_noop} s; slack "
          f"{cold_slack['ff']} s, thin {cold_slack['thin']} s)", flush=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""The HTTP layer alone: knevents' own server against uvicorn + the ASGI app it replaced, on a handler that does nothing.

    python bench/server.py [--quick] [--pairs N]

Runner ports and the thin function entry serve through :mod:`knevents.runtime.httpserver`;
before, they went through uvicorn (httptools, the connection guards of ``httpguard``) and
``asgi.asgi_app``. Both servers here answer one tiny handler, so what differs is the server's
own work. Each pair starts a fresh process of each, in alternating order: CPU per request
from ``/proc`` at 300 requests/s offered, then closed-loop requests/s (16 connections).
Prints each run, then medians and the ratio; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

RATE = 300.0
SERVERS = ("uvicorn", "knevents")


def _serve(kind: str, port: int) -> None:
    """The measured process: one server, one handler that answers 200 at once."""
    from knevents import web
    from knevents.runtime import asgi, httpserver
    from knevents.settings import ServerSettings

    async def ok(request: web.Request) -> web.Response:
        return web.Response(200, b"ok", {"content-type": "text/plain"})

    sock = asgi.bind("127.0.0.1", port)
    if kind == "knevents":
        httpserver.serve_forever(ok, sock, ServerSettings(), ServerSettings.max_body, logging.getLogger("bench"))
        return
    import uvicorn

    config = asgi.uvicorn_config(asgi.asgi_app(ok), ServerSettings(), loop="auto")
    uvicorn.Server(config).run(sockets=[sock])


def _run(kind: str, requests: int) -> tuple[float, float]:
    """(CPU ms per request at 300/s, closed-loop requests/s) of a fresh ``kind`` server."""
    port = common.free_port()
    proc = subprocess.Popen([sys.executable, __file__, "_serve", kind, str(port)])
    try:
        common.wait_port(port, 30)
        request = common.http_request("/hook", b'{"n": 1}', {"content-type": "application/json"}, port)
        common.load(port, request, 500, 8)  # warm up
        before = common.cpu_seconds(proc.pid)
        common.load(port, request, requests, 16, rate=RATE)
        cpu_ms = (common.cpu_seconds(proc.pid) - before) * 1000 / requests
        closed = common.load(port, request, requests * 2, 16)
        return cpu_ms, closed.rps
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 pairs of 1,800 requests (about a minute)")
    parser.add_argument("--pairs", type=int, default=0, help="pairs of runs (default 4 with --quick, else 8)")
    args = parser.parse_args()
    pairs = args.pairs or (4 if args.quick else 8)
    requests = 1800 if args.quick else 3000
    got: dict[str, dict[str, list[float]]] = {k: {"cpu": [], "rps": []} for k in SERVERS}
    for pair in range(pairs):
        order = SERVERS if pair % 2 == 0 else SERVERS[::-1]
        for kind in order:
            cpu_ms, rps = _run(kind, requests)
            got[kind]["cpu"].append(cpu_ms)
            got[kind]["rps"].append(rps)
            print(f"[server] pair {pair + 1} {kind}: {cpu_ms:.3f} ms CPU per request at 300/s, "
                  f"{rps:,.0f} requests/s closed loop", flush=True)
    median = {k: {m: statistics.median(v) for m, v in got[k].items()} for k in SERVERS}
    cpu_ratio = median["knevents"]["cpu"] / median["uvicorn"]["cpu"]
    lower = sum(a < b for a, b in zip(got["knevents"]["cpu"], got["uvicorn"]["cpu"], strict=True))
    print(f"CPU per request at 300/s: knevents {median['knevents']['cpu']:.3f} ms, uvicorn "
          f"{median['uvicorn']['cpu']:.3f} ms ({cpu_ratio:.2f}x; lower in {lower} of {pairs} pairs); "
          f"closed loop {median['knevents']['rps']:,.0f} vs {median['uvicorn']['rps']:,.0f} requests/s")
    print(json.dumps({"bench": "server", "pairs": pairs, "requests": requests,
                      **{f"{k}_cpu_ms_per_request": round(median[k]["cpu"], 3) for k in SERVERS},
                      **{f"{k}_rps": round(median[k]["rps"], 1) for k in SERVERS},
                      "cpu_ratio": round(cpu_ratio, 3), "lower_pairs": lower}))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "_serve":
        _serve(sys.argv[2], int(sys.argv[3]))
    else:
        main()

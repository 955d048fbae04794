"""Trigger overhead, as ratios to a baseline measured in the same run (not a test; not collected by pytest).

``python -m tests.integration.triggers.bench_trigger_overhead [N]``

* http: ``triggers.fire`` of an HTTP trigger vs a bare pooled ``httpx.AsyncClient.post`` to the same local server.
* k8s: ``triggers.fire`` of a k8s create vs the bare ``kubernetes`` dynamic client create, both on the API stand-in.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx
from knevents import triggers
from knevents.settings import KubeSettings, Settings
from knevents.triggers import kube

from tests.integration.triggers.http_target import HttpTarget
from tests.kube_standin import KubeStandIn
from tests.unit.triggers import trigger_support as support


async def _http(n: int, tmp: Path) -> tuple[float, float]:
    server = HttpTarget(tmp).start()
    try:
        url = server.url()
        async with httpx.AsyncClient() as client:
            await client.post(url, content=b"{}")
            start = time.perf_counter()
            for _ in range(n):
                (await client.post(url, content=b"{}")).raise_for_status()
            base = time.perf_counter() - start
        resolved = support.resolved({"name": "b", "http": {"url": url, "payload": []}}, payload=b"{}")
        ctx = support.context()
        await triggers.fire(resolved, ctx)
        start = time.perf_counter()
        for _ in range(n):
            await triggers.fire(resolved, ctx)
        ours = time.perf_counter() - start
        await triggers.aclose()
        return base, ours
    finally:
        server.close()


async def _k8s(n: int, tmp: Path) -> tuple[float, float]:
    from kubernetes import config
    from kubernetes.dynamic import DynamicClient

    server = KubeStandIn().start()
    try:
        path = server.kubeconfig(tmp / "kubeconfig")
        dynamic = DynamicClient(
            config.new_client_from_config(config_file=str(path)), cache_file=str(tmp / "d.json")
        )
        resource = dynamic.resources.get(api_version="v1", kind="ConfigMap")
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"generateName": "b-"},
            "data": {"k": "v"},
        }
        resource.create(body=body, namespace="bench")
        start = time.perf_counter()
        for _ in range(n):
            await asyncio.to_thread(resource.create, body=body, namespace="bench")
        base = time.perf_counter() - start
        kube.forget_clients()
        ctx = support.context(settings=Settings(kube=KubeSettings(kubeconfig=str(path))))
        resolved = support.resolved({"name": "b", "k8s": {"source": {"resource": {}}}}, resource=body)
        await triggers.fire(resolved, ctx)
        start = time.perf_counter()
        for _ in range(n):
            await triggers.fire(resolved, ctx)
        ours = time.perf_counter() - start
        return base, ours
    finally:
        server.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    with tempfile.TemporaryDirectory() as tmp:
        for name, bench in (("http", _http), ("k8s", _k8s)):
            rounds = [asyncio.run(bench(n, Path(tmp))) for _ in range(3)]  # best of 3: the machine is shared
            base, ours = min(r[0] for r in rounds), min(r[1] for r in rounds)
            print(
                f"{name}: fire() {ours / n * 1e3:.2f} ms/call, baseline {base / n * 1e3:.2f} ms/call, ratio {ours / base:.2f}"
            )


if __name__ == "__main__":
    main()

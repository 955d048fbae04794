"""Baselines measured in the same run as the knevents figures.

- raw nats-py: JetStream publish (with ack) and KV put/get/update rates;
- Argo Events' published figures, labelled as published, not measured.
"""

from __future__ import annotations

import asyncio
import time

# Argo Events' own published end-to-end throughput (events/s), as cited in knevents' design brief:
# "published end-to-end throughput is ~45–56 events/s". Published, not measured here.
ARGO_PUBLISHED_EVENTS_PER_S = 56.0


async def _nats(url: str, seconds: float) -> dict[str, float]:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="BASELINE", subjects=["baseline.>"])
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        await js.publish("baseline.x", b'{"a":1}', headers={"Nats-Msg-Id": str(n)})
        n += 1
    publish_rate = n / (time.perf_counter() - start)

    kv = await js.create_key_value(bucket="baseline")
    rev = await kv.put("k", b"0")
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        entry = await kv.get("k")
        rev = await kv.update("k", b"%d" % n, last=entry.revision)
        n += 1
    cas_rate = n / (time.perf_counter() - start)
    await nc.close()
    return {"nats_publish_per_s": publish_rate, "kv_get_update_per_s": cas_rate, "kv_rev": float(rev)}


def nats_baseline(url: str, seconds: float = 3.0) -> dict[str, float]:
    """Sequential JetStream publish and KV get+update (CAS) rates against a real nats-server."""
    result = asyncio.run(_nats(url, seconds))
    result.pop("kv_rev", None)
    return result

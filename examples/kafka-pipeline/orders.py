"""Create the example's topics, produce three orders and print what the pipeline writes to `orders-to-review`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

BROKER = sys.argv[1] if len(sys.argv) > 1 else "localhost:9092"
ORDERS = [{"id": "o-1", "customer": "ada", "amount": 250}, {"id": "o-2", "customer": "bob", "amount": 40},
          {"id": "o-3", "customer": "cy", "amount": 0}]


async def main() -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BROKER)
    await admin.start()
    for topic in ("orders", "orders-to-review"):
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(topic, 3, 1)])
    await admin.close()
    review = AIOKafkaConsumer("orders-to-review", bootstrap_servers=BROKER, auto_offset_reset="latest")
    await review.start()
    await asyncio.sleep(1)  # let the reader take its position before anything is produced
    producer = AIOKafkaProducer(bootstrap_servers=BROKER)
    await producer.start()
    for order in ORDERS:
        await producer.send_and_wait("orders", json.dumps(order).encode(), key=order["customer"].encode())
        print("produced", json.dumps(order))
    await producer.stop()
    try:
        record = await asyncio.wait_for(review.getone(), 60)
        headers = {k: v.decode() for k, v in record.headers}
        print(f"orders-to-review key={record.key.decode()} headers={headers} {record.value.decode()}")
    finally:
        await review.stop()


if __name__ == "__main__":
    asyncio.run(main())

"""A trigger sink in its own process: answers 200 to every request and appends it to a JSON-lines file.

Run as ``python -m tests.integration.sensor_runtime.sink_server <port> <file>``. A
separate process keeps the sink from competing with the test's client for the GIL.
"""

from __future__ import annotations

import asyncio
import json
import sys


async def _serve(port: int, path: str) -> None:
    out = open(path, "a", buffering=1)  # noqa: SIM115 (lives as long as the process)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                record = {"path": target, "ids": headers.get("knevents-event-ids", ""), "body": body.decode()}
                out.write(json.dumps(record) + "\n")
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), sys.argv[2]))

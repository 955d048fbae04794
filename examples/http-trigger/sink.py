"""A tiny HTTP sink for the http-trigger example: prints every request it gets and answers 200.

    python examples/http-trigger/sink.py [PORT] [STATUS]

PORT defaults to 8080; STATUS (default 200) lets you see retries and dead letters (try 500).
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink(BaseHTTPRequestHandler):
    status = 200

    def do_POST(self) -> None:  # http.server names its handlers this way
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        ids = self.headers.get("Knevents-Event-Ids", "-")
        print(f"{self.command} {self.path} event-ids={ids} body={body.decode(errors='replace')}", flush=True)
        self.send_response(self.status)
        self.send_header("content-length", "0")
        self.end_headers()

    do_PUT = do_POST

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    Sink.status = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    print(f"sink listening on http://localhost:{port}/ (answers {Sink.status})", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()

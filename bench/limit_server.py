"""The create limit: a minimal loopback server that parses the body with orjson and bulk-inserts
it into SQLite in one transaction, answering with a MessageBatch so the SDK call completes.

Run: python bench/limit_server.py PORT DB_PATH

It prints "ready" once it listens, then "body BYTES" for each create it answers.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

BATCH: dict[str, Any] = {
    "id": "msgbatch_limit",
    "type": "message_batch",
    "processing_status": "in_progress",
    "request_counts": {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
    "created_at": "2026-01-01T00:00:00Z",
    "expires_at": "2026-01-02T00:00:00Z",
    "ended_at": None,
    "cancel_initiated_at": None,
    "archived_at": None,
    "results_url": None,
}


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS requests (key INTEGER PRIMARY KEY, custom_id TEXT, params BLOB)")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            requests = orjson.loads(body)["requests"]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO requests (custom_id, params) VALUES (?, ?)",
                ((r["custom_id"], orjson.dumps(r["params"])) for r in requests),
            )
            conn.execute("COMMIT")
            out = orjson.dumps(
                {**BATCH, "request_counts": {**BATCH["request_counts"], "processing": len(requests)}}
            )
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
            print("body", len(body), flush=True)

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("ready", time.time(), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

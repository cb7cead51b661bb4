"""The results-download limit: a minimal loopback server streaming a batch's stored result lines.

It opens batchd's SQLite file read-only (next to a running batchd, which keeps writing it) and answers
`GET /v1/messages/batches/{id}/results` with the batch's `results.line` rows in key order, as
chunked JSONL: one query, a few MB per socket write, no framework, no state checks, no auth. What
batchd's own results route does beyond that is what its download costs over this.

Run: python bench/limit_results.py PORT DB_PATH     (prints "ready PORT" once listening)
"""

from __future__ import annotations

import queue
import sqlite3
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY_BITS = 32  # batchd's request key: batch seq << 32 | index (store/layout.py)
ROWS_PER_WRITE = 4096  # ~4 MB of 1 KB lines per socket write
PREFIX = "/v1/messages/batches/"


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    return conn


def serve(port: int, path: str) -> ThreadingHTTPServer:
    pool: queue.SimpleQueue[sqlite3.Connection] = (
        queue.SimpleQueue()
    )  # ThreadingHTTPServer: a thread per connection

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if not (self.path.startswith(PREFIX) and self.path.endswith("/results")):
                self.send_error(404)
                return
            batch_id = self.path[len(PREFIX) : -len("/results")]
            try:
                conn = pool.get_nowait()
            except queue.Empty:
                conn = connect(path)
            try:
                self.stream(conn, batch_id)
            finally:
                pool.put(conn)

        def stream(self, conn: sqlite3.Connection, batch_id: str) -> None:
            row = conn.execute("SELECT seq FROM batches WHERE id = ?", (batch_id,)).fetchone()
            if row is None:
                self.send_error(404)
                return
            low = row[0] << KEY_BITS
            high = low + (1 << KEY_BITS) - 1
            self.send_response(200)
            self.send_header("content-type", "application/x-jsonl")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            write = self.wfile.write
            cur = conn.execute("SELECT line FROM results WHERE key BETWEEN ? AND ? ORDER BY key", (low, high))
            while rows := cur.fetchmany(ROWS_PER_WRITE):
                data = b"".join([r[0] for r in rows])
                write(b"%x\r\n" % len(data))
                write(data)
                write(b"\r\n")
            write(b"0\r\n\r\n")

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    server = serve(port, path)
    print("ready", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

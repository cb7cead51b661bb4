"""The upload limit: a minimal loopback server that stores an upload's bytes and does nothing else.

Run: python bench/limit_files.py PORT DIR

`POST /v1/files` copies the request body (the multipart body as sent, unparsed) to a file in DIR in
1 MB reads, fsyncs it (durable before the answer, as batchd's upload) and answers a FileObject, so
the official `openai` SDK's call completes; `GET
/v1/files/ID/content` streams the stored bytes back. It prints "ready" once it listens.
"""

from __future__ import annotations

import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson

CHUNK = 1 << 20


def main() -> None:
    port, root = int(sys.argv[1]), Path(sys.argv[2])
    root.mkdir(parents=True, exist_ok=True)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            left = int(self.headers["content-length"])
            size = left
            with (root / "upload").open("wb") as fh:
                while left:
                    data = self.rfile.read(min(CHUNK, left))
                    fh.write(data)
                    left -= len(data)
                fh.flush()
                os.fsync(fh.fileno())  # stored: on disk before the answer, as batchd's commit
            now = int(time.time())
            body = orjson.dumps(
                {
                    "id": "file-limit",
                    "object": "file",
                    "bytes": size,
                    "created_at": now,
                    "expires_at": None,
                    "filename": "upload.jsonl",
                    "purpose": "batch",
                    "status": "processed",
                    "status_details": None,
                }
            )
            self._send(200, "application/json", len(body))
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = root / "upload"
            self._send(200, "application/octet-stream", path.stat().st_size)
            with path.open("rb") as fh:
                while data := fh.read(CHUNK):
                    self.wfile.write(data)

        def _send(self, status: int, content_type: str, length: int) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(length))
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("ready", time.time(), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

"""A webhook receiver on a real loopback socket: verifies each message as the docs tell users to,
answers as a test scripts it, and keeps what it got (deduplicated by `webhook-id`, as a receiver
should)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# attempt number (1-based, per webhook-id) -> (HTTP status, seconds to wait before answering)
Script = Callable[[int], tuple[int, float]]


def always(status: int) -> Script:
    return lambda attempt: (status, 0.0)


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: float = 300) -> dict[str, Any]:
    """The receiver-side check of docs/webhooks.md: the signature, then the timestamp's age."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s.partition(",")[2] for s in headers["webhook-signature"].split()]
    if not any(hmac.compare_digest(expected, g) for g in given):
        raise ValueError("bad signature")
    if abs(time.time() - int(headers["webhook-timestamp"])) > tolerance:
        raise ValueError("stale timestamp")
    found: dict[str, Any] = json.loads(body)
    return found


class Receiver:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.secret = ""  # set by the test once the endpoint exists
        self.lock = threading.Lock()
        self.attempts: list[tuple[dict[str, str], bytes]] = []  # every request, in arrival order
        self.delivered: dict[str, dict[str, Any]] = {}  # webhook-id -> payload, first 2xx answer only
        self.duplicates = 0  # 2xx answers to an id already delivered
        self.bad_signatures = 0
        self.arrived = threading.Condition(self.lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, wait = receiver._record(headers, body)
                if 200 <= status < 300:
                    receiver._accept(headers, body)  # processed first, answered after (as receivers do)
                time.sleep(wait)
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender is gone (killed mid-attempt)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def _record(self, headers: dict[str, str], body: bytes) -> tuple[int, float]:
        with self.lock:
            self.attempts.append((headers, body))
            attempt = sum(1 for h, _ in self.attempts if h.get("webhook-id") == headers.get("webhook-id"))
            self.arrived.notify_all()
        return self.script(attempt)

    def _accept(self, headers: dict[str, str], body: bytes) -> None:
        try:
            payload = verify(self.secret, headers, body)
        except (ValueError, KeyError):
            with self.lock:
                self.bad_signatures += 1
            return
        with self.lock:
            if headers["webhook-id"] in self.delivered:
                self.duplicates += 1
            else:
                self.delivered[headers["webhook-id"]] = payload
            self.arrived.notify_all()

    def wait_for(self, check: Callable[[Receiver], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not check(self):
                left = deadline - time.monotonic()
                assert left > 0, (
                    f"receiver: timed out; attempts={len(self.attempts)} delivered={self.delivered}"
                )
                self.arrived.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

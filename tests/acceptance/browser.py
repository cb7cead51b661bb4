"""What the Chromium tests share: the browser's path and flags, an attacker's web server and its
pages, and batchd's access log read for what each of their requests was answered.

Needs Debian's chromium at /usr/bin/chromium (`.ci/run` installs it) and the `playwright` package;
a test module calls `skip_without_chromium()` first and is skipped cleanly when either is missing.
"""

from __future__ import annotations

import html
import http.server
import os
import re
import threading
import time
from types import ModuleType

import pytest

from tests.acceptance.server import ServerProcess, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TIMEOUT_MS = 30_000  # generous: CI shares two cores


def skip_without_chromium() -> ModuleType:
    """playwright.sync_api, or the calling module skipped."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
    return sync_api


class Attacker:
    """A web server on another loopback origin (its own port) serving the pages a test gives it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.split("?")[0], "").encode()
                self.send_response(200 if body else 404)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Attacker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def cancel_attacks(api: str, batch_id: str) -> tuple[str, int]:
    """A page that tries to cancel `batch_id` on the batchd at `api` four ways, and how many
    requests it sends there: a form posted to the dashboard and a no-CORS fetch to the API, each
    from the page itself (a foreign origin) and from a sandboxed frame (`Origin: null`)."""
    dashboard, endpoint = f"{api}/batches/{batch_id}/cancel", f"{api}/v1/messages/batches/{batch_id}/cancel"
    attacks = f"""
        <iframe name="sink" hidden></iframe>
        <form id="f" method="post" action="{dashboard}" target="sink"><input name="x" value="1"></form>
        <script>
          fetch("{endpoint}", {{method: "POST", mode: "no-cors"}});
          document.getElementById("f").submit();
        </script>"""
    framed = html.escape(attacks, quote=True)
    page = f'{attacks}<iframe sandbox="allow-forms allow-scripts" srcdoc="{framed}"></iframe>'
    return page, 4


def log_mark(srv: ServerProcess) -> int:
    return len(srv.log().splitlines())


def answered(srv: ServerProcess, path: str, since: int, n: int) -> list[int]:
    """The statuses of the first `n` POSTs to `path` in batchd's access log after line `since`.

    Read from the server's log, not the browser's events: a sandboxed frame runs in a process of
    its own, whose requests the browser's page does not report."""
    line = re.compile(rf"method=POST path={re.escape(path)} .*status=(\d+)")
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        found = [int(m[1]) for m in map(line.search, srv.log().splitlines()[since:]) if m]
        if len(found) >= n:
            return found
        assert time.monotonic() < deadline, f"only {len(found)} of {n} requests to {path} arrived"
        time.sleep(0.05)

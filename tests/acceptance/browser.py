"""What the Chromium tests share: the browser's path and flags, an attacker's web server and its
pages, and batchd's access log read for what each of their requests was answered.

Needs Debian's chromium at /usr/bin/chromium (`.ci/run` installs it) and the `playwright` package;
a test module calls `skip_without_chromium()` first and is skipped cleanly when either is missing.
"""

from __future__ import annotations

import contextlib
import html
import http.server
import os
import re
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

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


@contextlib.contextmanager
def chromium(*args: str) -> Iterator[Any]:
    """Headless Chromium (a playwright Browser), `args` added to its command line."""
    sync_api = skip_without_chromium()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *args])
        try:
            yield browser
        finally:
            browser.close()


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


def cancel_attacks(api: str, batch_id: str) -> str:
    """A page that tries to cancel `batch_id` on the batchd at `api` four ways: a form posted to
    the dashboard and a no-CORS fetch to the API, each from the page itself (a foreign origin) and
    from a sandboxed frame (`Origin: null`)."""
    dashboard, endpoint = f"{api}/batches/{batch_id}/cancel", f"{api}/v1/messages/batches/{batch_id}/cancel"
    attacks = f"""
        <iframe name="sink" hidden></iframe>
        <form id="f" method="post" action="{dashboard}" target="sink"><input name="x" value="1"></form>
        <script>
          fetch("{endpoint}", {{method: "POST", mode: "no-cors"}});
          document.getElementById("f").submit();
        </script>"""
    framed = html.escape(attacks, quote=True)
    return f'{attacks}<iframe sandbox="allow-forms allow-scripts" srcdoc="{framed}"></iframe>'


def try_to_cancel(page: Any, srv: ServerProcess, attacker: Attacker, batch_id: str) -> list[int]:
    """Sends `page` to the attacker's page of `cancel_attacks`: what batchd answered each attack."""
    attacker.pages["/cancel"] = cancel_attacks(srv.base_url, batch_id)
    mark = log_mark(srv)
    page.goto(attacker.origin + "/cancel")
    dashboard = answered(srv, f"/batches/{batch_id}/cancel", mark, 2)
    return dashboard + answered(srv, f"/v1/messages/batches/{batch_id}/cancel", mark, 2)


def click_cancel(page: Any, url: str) -> None:
    """Cancels the batch of the dashboard page at `url` with its own button, as its user does."""
    page.goto(url)
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("button[data-action=cancel]")
    page.wait_for_function("() => document.querySelector('[data-status]').textContent !== 'in progress'")


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

"""Cross-site requests and DNS rebinding against batchd's default mode (loopback, no keys), in
headless Chromium: pages elsewhere make the browser send what they can without CORS permission.

The attacker's pages come from a real server on another loopback origin (another port of
127.0.0.1: the same site as batchd, so a browser would even send batchd's cookies). The rebinding
name is mapped to 127.0.0.1 by Chromium's resolver, as an attacker's DNS would after its first
answer. Each attack passed on the code before issue 12.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.acceptance.browser import (
    TIMEOUT_MS,
    Attacker,
    answered,
    chromium,
    click_cancel,
    log_mark,
    skip_without_chromium,
    try_to_cancel,
)
from tests.acceptance.conftest import make_client, simple_request
from tests.acceptance.server import ServerProcess

skip_without_chromium()
REBIND = "rebind.test"  # a name whose DNS answers 127.0.0.1 (rebinding), as Chromium is told here
REFUSED = {403, 415}  # 403 for the origin or the host, 415 for a body that is not JSON


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # No keys, the default. One request at a time, a second each: slow_batch stays in progress.
    # The access log (info) says what each attack was answered.
    env = {"BATCHD_CONCURRENCY": "1", "BATCHD_LOG_LEVEL": "info"}
    proc = ServerProcess(tmp_path_factory.mktemp("batchd-cross-site"), env).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def attacker() -> Iterator[Attacker]:
    server = Attacker().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(f"--host-resolver-rules=MAP {REBIND} 127.0.0.1") as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def slow_batch(srv: ServerProcess) -> str:
    with make_client(srv.base_url) as client:
        rows = [simple_request(f"s{i}", "slow @sim:delay=1") for i in range(30)]
        return client.messages.batches.create(requests=rows).id  # type: ignore[arg-type]


def batch_ids(srv: ServerProcess) -> list[str]:
    with make_client(srv.base_url) as client:
        return [b.id for b in client.messages.batches.list(limit=1000).data]


def test_a_page_elsewhere_cannot_create_batches(
    page: Any, srv: ServerProcess, attacker: Attacker, tmp_path: Path
) -> None:
    before = batch_ids(srv)
    body = orjson.dumps({"requests": [simple_request("evil")]}).decode()
    endpoint = f"{srv.base_url}/v1/messages/batches"
    # A JSON body smuggled in a text/plain form: the field name holds it, '=' and the value close it.
    name, value = body[:-1] + ',"x":"', '"}'
    attacker.pages["/create"] = f"""
        <iframe name="sink" hidden></iframe>
        <form id="f" method="post" enctype="text/plain" action="{endpoint}" target="sink">
          <input type="hidden" name='{name}' value='{value}'>
        </form>
        <script>
          const body = {orjson.dumps(body).decode()}, headers = {{"content-type": "text/plain"}};
          fetch("{endpoint}", {{method: "POST", mode: "no-cors", headers, body}});
          fetch("{endpoint}", {{method: "POST", mode: "no-cors", body: new Blob([body])}});
          document.getElementById("f").submit();
        </script>"""
    mark = log_mark(srv)
    page.goto(attacker.origin + "/create")
    seen = answered(srv, "/v1/messages/batches", mark, 3)
    page.screenshot(path=str(tmp_path / "create-attack.png"))
    assert set(seen) <= REFUSED, seen
    assert batch_ids(srv) == before


def test_a_page_elsewhere_cannot_cancel_but_the_dashboard_can(
    page: Any, srv: ServerProcess, attacker: Attacker, tmp_path: Path
) -> None:
    batch_id = slow_batch(srv)
    # Refused for the origin: another port's, or null from the sandboxed frame.
    assert try_to_cancel(page, srv, attacker, batch_id) == [403] * 4
    with make_client(srv.base_url) as client:
        batch = client.messages.batches.retrieve(batch_id)
    assert batch.processing_status == "in_progress" and batch.request_counts.canceled == 0
    click_cancel(page, f"{srv.base_url}/batches/{batch_id}")  # the dashboard's own button still works
    page.screenshot(path=str(tmp_path / "canceled.png"))
    with make_client(srv.base_url) as client:
        batch = client.messages.batches.retrieve(batch_id)
    assert batch.processing_status in ("canceling", "ended") and batch.request_counts.canceled > 0


def test_a_rebinding_name_reaches_nothing(page: Any, srv: ServerProcess) -> None:
    slow_batch(srv)
    before = batch_ids(srv)
    response = page.goto(f"http://{REBIND}:{srv.port}/")
    assert response.status == 403 and response.json()["error"]["type"] == "permission_error"
    # To the browser this page is batchd's own origin: it may send JSON and read the answers.
    body = orjson.dumps({"requests": [simple_request("rebound")]}).decode()
    statuses = page.evaluate(
        """async body => {
            const create = await fetch("/v1/messages/batches",
                {method: "POST", headers: {"content-type": "application/json"}, body});
            const list = await fetch("/v1/messages/batches");
            const health = await fetch("/health");
            return [create.status, list.status, health.status];
        }""",
        body,
    )
    assert statuses == [403, 403, 403]
    assert batch_ids(srv) == before
    # Loopback names are served.
    assert page.goto(f"http://localhost:{srv.port}/").status == 200
    assert before[0] in page.content()

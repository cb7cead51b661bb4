"""The dashboard in headless Chromium: log in once, watch a batch progress, open a result, cancel.

Needs Debian's chromium at /usr/bin/chromium (`.ci/run` installs it) and the `playwright` package;
skipped cleanly when either is missing. Screenshots land in the test's temp folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import make_client, simple_request
from tests.acceptance.server import ServerProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
KEY = "browser-key"
TIMEOUT_MS = 30_000  # generous: CI shares two cores

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Two requests at a time, ~0.3 s each: a batch of 30 visibly progresses for a few seconds.
    env = {"BATCHD_API_KEYS": f"{KEY}:team", "BATCHD_CONCURRENCY": "2", "BATCHD_SIM_LATENCY": "0.3s"}
    proc = ServerProcess(tmp_path_factory.mktemp("batchd-browser"), env).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, srv: ServerProcess, tmp_path: Path) -> Iterator[Any]:
    context = browser.new_context(base_url=srv.base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    # The key is asked for once, then kept by the browser for every later page.
    pg.goto("/")
    pg.fill("input[name=key]", KEY)
    pg.click("form.login button[type=submit]")
    pg.wait_for_url(srv.base_url + "/")
    yield pg
    context.close()


def create(srv: ServerProcess, rows: list[Any]) -> str:
    with make_client(srv.base_url, default_headers={"x-api-key": KEY}) as client:
        return client.messages.batches.create(requests=rows).id


def test_list_shows_live_progress(page: Any, srv: ServerProcess, tmp_path: Path) -> None:
    batch_id = create(srv, [simple_request(f"live{i}") for i in range(30)])
    page.reload()
    row = page.locator(f'tr[data-batch-id="{batch_id}"]')
    row.wait_for()
    page.evaluate("window.__notReloaded = true")
    # Counts move in place (polled JSON twin), the page itself is never reloaded.
    page.wait_for_function(
        """id => {
            const row = document.querySelector(`tr[data-batch-id="${id}"]`);
            const done = Number(row.querySelector('[data-count="succeeded"] b').textContent);
            return window.__notReloaded && done > 0 && done < 30;
        }""",
        arg=batch_id,
    )
    page.screenshot(path=str(tmp_path / "list-progress.png"))
    page.wait_for_function(
        """id => document.querySelector(`tr[data-batch-id="${id}"] [data-status]`).textContent === 'ended'""",
        arg=batch_id,
    )
    assert page.evaluate("window.__notReloaded") is True
    assert row.locator('[data-count="succeeded"] b').inner_text() == "30"


def test_open_a_result_and_find_by_custom_id(page: Any, srv: ServerProcess, tmp_path: Path) -> None:
    rows = [simple_request("fine"), simple_request("broken", "please @sim:error=invalid_request")]
    batch_id = create(srv, rows)
    page.goto(f"/batches/{batch_id}")
    page.wait_for_selector('section.batch[data-status-value="ended"]')  # reloaded when it ended
    page.click('details[data-custom-id="fine"] > summary')
    text = page.locator('details[data-custom-id="fine"] .block.text')
    assert text.inner_text().startswith("You asked about: Hello there")
    page.fill("input[name=custom_id]", "broken")
    page.click("form.search button[type=submit]")
    page.wait_for_url("**custom_id=broken**")
    assert page.locator("details.result").count() == 1
    page.click('details[data-custom-id="broken"] > summary')
    error = page.locator('details[data-custom-id="broken"] pre.error-text')
    assert "Simulated invalid_request_error" in error.inner_text()
    page.screenshot(path=str(tmp_path / "result-error.png"), full_page=True)


def test_cancel_a_batch(page: Any, srv: ServerProcess, tmp_path: Path) -> None:
    batch_id = create(srv, [simple_request(f"c{i}", "slow @sim:delay=1") for i in range(40)])
    page.goto(f"/batches/{batch_id}")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("button[data-action=cancel]")
    page.wait_for_function("() => document.querySelector('[data-status]').textContent === 'ended'")
    canceled = int(page.locator('[data-count="canceled"] b').inner_text())
    assert canceled > 0
    assert page.locator("button[data-action=delete]").count() == 1
    page.screenshot(path=str(tmp_path / "canceled.png"))

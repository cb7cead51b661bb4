"""The dashboard in headless Chromium: log in once, watch a batch progress, open a result, cancel;
its Content-Security-Policy holds with no violation, and a page elsewhere cannot act for a user.

Needs Debian's chromium at /usr/bin/chromium (`.ci/run` installs it) and the `playwright` package;
skipped cleanly when either is missing. Screenshots land in the test's temp folder.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.browser import (
    TIMEOUT_MS,
    Attacker,
    chromium,
    click_cancel,
    skip_without_chromium,
    try_to_cancel,
)
from tests.acceptance.conftest import make_client, simple_request
from tests.acceptance.server import ServerProcess

KEY = "browser-key"

skip_without_chromium()
# What a page reports when its Content-Security-Policy refuses something, collected before any
# script of the page runs (Playwright's init scripts are not subject to the page's policy).
CSP_WATCH = """
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation",
        e => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Two requests at a time, ~0.3 s each: a batch of 30 visibly progresses for a few seconds. The
    # access log (info) says what each attack was answered.
    env = {
        "BATCHD_API_KEYS": f"{KEY}:team",
        "BATCHD_CONCURRENCY": "2",
        "BATCHD_SIM_LATENCY": "0.3s",
        "BATCHD_LOG_LEVEL": "info",
    }
    proc = ServerProcess(tmp_path_factory.mktemp("batchd-browser"), env).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def console() -> list[str]:
    """What the page wrote to its console, from the login on."""
    return []


@pytest.fixture
def page(browser: Any, srv: ServerProcess, console: list[str]) -> Iterator[Any]:
    context = browser.new_context(base_url=srv.base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(CSP_WATCH)
    pg = context.new_page()
    pg.on("console", lambda message: console.append(message.text))
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


def test_pages_keep_to_their_content_security_policy(
    page: Any, srv: ServerProcess, console: list[str], tmp_path: Path
) -> None:
    running = create(srv, [simple_request(f"csp{i}") for i in range(20)])
    ended = create(srv, [simple_request("fine"), simple_request("broken", "@sim:error=invalid_request")])
    for path in ["/", f"/batches/{running}", f"/batches/{ended}", "/batches/msgbatch_missing"]:
        response = page.goto(path)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["cache-control"] == "no-store"
        page.wait_for_load_state("networkidle")
    # app.js ran under the policy: it painted the bars (their widths come from it) and polled.
    page.goto(f"/batches/{running}")
    page.wait_for_selector('section.batch[data-status-value="ended"]')  # polled, then reloaded
    width = page.eval_on_selector('[data-seg="succeeded"]', "e => e.getBoundingClientRect().width")
    assert width > 100
    assert page.evaluate("window.__cspViolations") == []
    assert not [text for text in console if "Content Security Policy" in text], console
    page.screenshot(path=str(tmp_path / "csp.png"))

    # The watch sees a violation when there is one: inline script and style are refused.
    page.evaluate(
        """() => {
            const s = document.createElement("script");
            s.textContent = "window.__inlineRan = true";
            document.body.append(s);
            document.body.setAttribute("style", "background: red");
        }"""
    )
    page.wait_for_function("window.__cspViolations.length >= 2")
    assert page.evaluate("window.__inlineRan") is None
    assert any("Content Security Policy" in text for text in console)


def test_the_session_cookie_holds_no_key(page: Any) -> None:
    (cookie,) = page.context.cookies()
    assert cookie["name"] == "batchd_session" and KEY not in cookie["value"] and len(cookie["value"]) >= 40
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]
    assert cookie["expires"] > time.time() + 6 * 86400  # session_lifetime, 7 days
    assert page.evaluate("document.cookie") == ""  # out of reach of scripts


def test_a_page_elsewhere_cannot_act_for_a_logged_in_user(page: Any, srv: ServerProcess) -> None:
    attacker = Attacker().start()
    try:
        batch_id = create(srv, [simple_request(f"x{i}", "slow @sim:delay=1") for i in range(40)])
        # Another port of 127.0.0.1 is the same site: the browser sends it the session cookie.
        assert try_to_cancel(page, srv, attacker, batch_id) == [403] * 4
        with make_client(srv.base_url, default_headers={"x-api-key": KEY}) as client:
            batch = client.messages.batches.retrieve(batch_id)
        assert batch.processing_status == "in_progress" and batch.request_counts.canceled == 0
        click_cancel(page, f"/batches/{batch_id}")  # the user's own click does cancel
    finally:
        attacker.stop()

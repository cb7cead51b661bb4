"""The dashboard as a daily tool, in headless Chromium (issue 18): upload a requests file (a bad one
shows the CLI's line-numbered problems and creates nothing), download results (all, one type, a
retry file) byte for byte as the API serves them, usage and speed figures against the results,
the upstreams page against /metrics with a loopback upstream that fails some calls, workspaces
kept apart, the 360 px layout and the keyboard.

Needs Debian's chromium at /usr/bin/chromium and the `playwright` package; skipped without them.
With SCREENSHOTS_DIR=DIR set, each page is also saved there at 1400 and 360 px (docs/screenshots).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from batchd.params import jsonl
from tests.acceptance.browser import TIMEOUT_MS, chromium, skip_without_chromium
from tests.acceptance.server import ServerProcess
from tests.integration.backends_upstream import Upstream

skip_without_chromium()

KEY, OTHER, LIMITED, METRICS = "team-key", "other-key", "limited-key", "prom-key"
MAX_REQUESTS = 30  # the server's per-batch limit: a 40-line file becomes two batches
SHOTS = os.environ.get("SCREENSHOTS_DIR")


def line(custom_id: str, text: str, model: str = "claude-sim", **extra: Any) -> dict[str, Any]:
    params = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": text}], **extra}
    return {"custom_id": custom_id, "params": params}


def jsonl_bytes(items: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(i) + b"\n" for i in items)


GOOD = [
    line("ok-1", "hello there"),
    line("ok-2", "tell me a story @sim:tokens=17"),
    line("bad-1", "this fails @sim:error=overloaded"),
    line("ok-3", "and more", system="be brief"),
    line("bad-2", "so does this @sim:error=invalid_request"),
    line("ok-4", "bye", model="claude-other"),
]
BAD = (
    b'{"custom_id": "a", "params": {}}\n'
    b'{"custom_id": "a", "params": {}}\n'
    b"not json\n"
    b'{"custom_id": "b"}\n'
    b'{"custom_id": "c d", "params": {}, "extra": 1}\n'
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    up = Upstream().start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[ServerProcess]:
    routes = [{"model": "flaky", "backend": "anthropic", "base_url": upstream.url, "concurrency": 2}]
    env = {
        "BATCHD_API_KEYS": f"{KEY}:team,{OTHER}:other,{LIMITED}:limited",
        "BATCHD_QUOTAS": json.dumps({"limited": {"batches": 1}}),
        "BATCHD_METRICS_KEYS": METRICS,
        "BATCHD_CONCURRENCY": "2",
        "BATCHD_SIM_LATENCY": "0.05s",
        "BATCHD_MAX_REQUESTS": str(MAX_REQUESTS),
        "BATCHD_RETRY_BASE": "0.05s",
        "BATCHD_RETRY_MAX": "0.1s",
        "BATCHD_ROUTES": json.dumps(routes),
    }
    proc = ServerProcess(tmp_path_factory.mktemp("batchd-workflow"), env).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def logged_in(browser: Any, srv: ServerProcess, key: str = KEY, width: int = 1400) -> Any:
    context = browser.new_context(base_url=srv.base_url, viewport={"width": width, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=key]", key)
    page.click("form.login button[type=submit]")
    page.wait_for_url(srv.base_url + "/")
    return page


@pytest.fixture
def page(browser: Any, srv: ServerProcess) -> Iterator[Any]:
    pg = logged_in(browser, srv)
    yield pg
    pg.context.close()


def api(srv: ServerProcess, key: str = KEY) -> httpx.Client:
    return httpx.Client(base_url=srv.base_url, headers={"x-api-key": key}, timeout=30)


def batch_ids(srv: ServerProcess, key: str = KEY) -> list[str]:
    with api(srv, key) as client:
        return [b["id"] for b in client.get("/v1/messages/batches", params={"limit": 100}).json()["data"]]


def ensure_batch(srv: ServerProcess) -> str:
    """An ended batch of this workspace (the newest), made when the tests before made none."""
    with api(srv) as client:
        listed = client.get("/v1/messages/batches").json()["data"]
        if listed:
            return wait_ended_http(client, listed[0]["id"])["id"]
        created = client.post("/v1/messages/batches", json={"requests": GOOD}).json()
        return wait_ended_http(client, created["id"])["id"]


def upload(page: Any, name: str, content: bytes) -> None:
    page.goto("/new")
    page.set_input_files(
        "input[type=file]", files=[{"name": name, "mimeType": "application/x-ndjson", "buffer": content}]
    )


def shoot(page: Any, name: str) -> None:
    if SHOTS:
        width = page.viewport_size["width"]
        page.screenshot(path=str(Path(SHOTS) / f"{name}-{width}.png"), full_page=width > 400)


def test_a_bad_file_shows_every_problem_as_the_cli_does_and_creates_nothing(
    page: Any, srv: ServerProcess
) -> None:
    before = batch_ids(srv)
    upload(page, "requests.jsonl", BAD)
    page.wait_for_selector("[data-problem-list] li")
    shown = page.locator("[data-problem-list] li").all_text_contents()
    with pytest.raises(jsonl.BadInput) as cli:
        jsonl.check_lines(BAD.split(b"\n"), 256 << 20, name="requests.jsonl")
    assert shown == cli.value.lines() and len(shown) == 4
    assert shown[0] == "requests.jsonl:2: duplicate custom_id 'a' (first on line 1)"
    status = page.locator("[data-upload-status]").text_content()
    assert status == "requests.jsonl: 4 problem(s); nothing was created"
    shoot(page, "new-batch-problems")
    assert batch_ids(srv) == before
    assert page.url.endswith("/new")


def test_a_good_file_lands_on_its_batch_and_every_download_matches_the_api(
    page: Any, srv: ServerProcess, tmp_path: Path
) -> None:
    upload(page, "good.jsonl", jsonl_bytes(GOOD))
    page.wait_for_url("**/batches/msgbatch_*")
    batch_id = page.url.rsplit("/", 1)[-1]
    with api(srv) as client:
        assert wait_ended_http(client, batch_id)["request_counts"]["errored"] == 2
        everything = client.get(f"/v1/messages/batches/{batch_id}/results").content
    page.reload()
    page.wait_for_selector("[data-download=retry]")
    shoot(page, "batch")

    def download(which: str) -> bytes:
        with page.expect_download() as info:
            page.click(f"[data-download={which}]")
        path = tmp_path / which
        info.value.save_as(path)
        return path.read_bytes()

    assert download("all") == everything
    errored = [ln for ln in everything.splitlines(keepends=True) if b'"type":"errored"' in ln]
    assert download("errored") == b"".join(errored) and len(errored) == 2
    succeeded = [ln for ln in everything.splitlines(keepends=True) if b'"type":"succeeded"' in ln]
    assert download("succeeded") == b"".join(succeeded)
    retry = [orjson.loads(x) for x in download("retry").splitlines()]
    assert retry == [GOOD[2], GOOD[4]]  # the failed requests, as they were sent
    # The retry file is a requests file the CLI (and this page) accepts as it is.
    assert len(jsonl.check_lines(jsonl_bytes(retry).split(b"\n"), 1 << 20, name="r").items) == 2


def wait_ended_http(client: httpx.Client, batch_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        batch: dict[str, Any] = client.get(f"/v1/messages/batches/{batch_id}").json()
        if batch["processing_status"] == "ended":
            return batch
        assert time.monotonic() < deadline, batch
        time.sleep(0.1)


def usage_of(results: bytes) -> dict[str, dict[str, int]]:
    """Sums by model computed here, independently of the dashboard, from the API's result lines."""
    sums: dict[str, dict[str, int]] = {}
    for raw in results.splitlines():
        result = orjson.loads(raw)["result"]
        if result["type"] != "succeeded":
            continue
        usage, model = result["message"]["usage"], result["message"]["model"]
        mine = sums.setdefault(model, {})
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ):
            mine[name] = mine.get(name, 0) + (usage.get(name) or 0)
        tools = usage.get("server_tool_use") or {}
        mine["server_tool_calls"] = mine.get("server_tool_calls", 0) + sum(tools.values())
    return sums


def test_usage_and_speed_while_a_batch_runs_and_after(page: Any, srv: ServerProcess) -> None:
    # 24 requests, two at a time, ~0.05 s each plus 2 tokens of 0.02 s: a few seconds of progress.
    items = [line(f"r{i}", f"question {i} @sim:tokens={5 + i} @sim:delay=0.15") for i in range(24)]
    upload(page, "run.jsonl", jsonl_bytes(items))
    page.wait_for_url("**/batches/msgbatch_*")
    batch_id = page.url.rsplit("/", 1)[-1]
    # While it runs: a rate "now" and an ETA appear, the chart gains points.
    page.wait_for_function(
        "() => document.querySelector('[data-speed=eta_seconds]').textContent.trim() !== '—'"
    )
    page.wait_for_function(
        "() => !document.querySelector('[data-speed=requests_per_second]').textContent.startsWith('—')"
    )
    with api(srv) as client:
        ended = wait_ended_http(client, batch_id)
        results = client.get(f"/v1/messages/batches/{batch_id}/results").content
    with api(srv) as client:  # the JSON twin, with the key as a header
        twin = client.get(f"/batches/{batch_id}", params={"format": "json"}).json()
    assert twin["usage"]["by_model"] == usage_of(results)
    assert twin["usage"]["totals"]["output_tokens"] == sum(5 + i for i in range(24))  # @sim:tokens
    speed = twin["speed"]
    assert speed["eta_seconds"] is None and speed["requests_per_second"] is None  # ended
    assert speed["average_per_second"] == pytest.approx(24 / speed["elapsed_seconds"], rel=1e-6)
    assert speed["elapsed_seconds"] > 1 and ended["ended_at"]
    points = [tuple(map(float, p.split(","))) for p in speed["chart"]["points"].split()]
    assert len(points) >= 4  # created, samples taken while the page polled, ended
    assert points[0] == (0.0, 80.0) and points[-1] == (320.0, 0.0)  # from 0 at creation to all at the end
    # Time moves right and the count only up (a sample may be a hair past the end: 0.5 units).
    assert all(b[0] >= a[0] - 0.5 and b[1] <= a[1] for a, b in itertools.pairwise(points))
    # The HTML table says the same as the JSON twin.
    page.reload()
    row = page.locator("table[data-usage] tr[data-model='claude-sim'] td").all_text_contents()
    sim = usage_of(results)["claude-sim"]
    assert [int(c.replace(",", "")) for c in row] == [
        sim["input_tokens"], sim["output_tokens"], sim["cache_read_input_tokens"],
        sim["cache_creation_input_tokens"], sim["server_tool_calls"],
    ]  # fmt: skip
    # The list page totals the batches it shows.
    page.goto("/")
    shoot(page, "batches")
    with api(srv) as client:
        listed = client.get("/", params={"format": "json"}).json()
        expected: dict[str, int] = {}
        for b in listed["batches"]:
            if b["processing_status"] == "ended":
                results = client.get(f"/v1/messages/batches/{b['id']}/results").content
                for by_model in usage_of(results).values():
                    for name, value in by_model.items():
                        expected[name] = expected.get(name, 0) + value
    assert listed["usage"]["totals"] == expected


def test_a_dropped_file_over_the_limits_becomes_several_batches(page: Any, srv: ServerProcess) -> None:
    before = set(batch_ids(srv))
    items = [line(f"s{i}", "split me") for i in range(MAX_REQUESTS + 10)]
    page.goto("/new")
    # A real drop: a File in a DataTransfer, dispatched on the drop zone.
    page.evaluate(
        """(text) => {
            const data = new DataTransfer();
            data.items.add(new File([text], "big.jsonl", {type: "application/x-ndjson"}));
            const zone = document.querySelector("[data-drop]");
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
        }""",
        jsonl_bytes(items).decode(),
    )
    page.wait_for_url(srv.base_url + "/")
    new = [b for b in batch_ids(srv) if b not in before]
    with api(srv) as client:
        sizes = sorted(
            sum(client.get(f"/v1/messages/batches/{b}").json()["request_counts"].values()) for b in new
        )
    assert sizes == [10, MAX_REQUESTS]


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for raw in text.splitlines():
        if raw.startswith(name + "{"):
            found = raw[len(name) + 1 : raw.index("}")]
            if ",".join(sorted(found.split(","))) == want:
                return float(raw.rsplit(" ", 1)[1])
    return 0.0


def test_the_upstreams_page_matches_metrics(
    page: Any, browser: Any, srv: ServerProcess, upstream: Upstream
) -> None:
    texts = ["fail=529x1 one", "fail=529x2 two", "fail=400x1 three", "plain four", "plain five"]
    with api(srv) as client:
        created = client.post(
            "/v1/messages/batches",
            json={"requests": [line(f"u{i}", t, model="flaky") for i, t in enumerate(texts)]},
        ).json()
        wait_ended_http(client, created["id"])
    scrape = httpx.get(srv.base_url + "/metrics", headers={"authorization": f"Bearer {METRICS}"})
    assert scrape.status_code == 200
    scraped = scrape.text
    page.goto("/upstreams")
    shoot(page, "upstreams")
    figures = page.evaluate("fetch('/upstreams?format=json').then(r => r.json())")
    flaky = next(r for r in figures["routes"] if r["route"] == "flaky")
    assert flaky["backend"] == "anthropic" and flaky["concurrency"] == 2 and flaky["in_flight"] == 0
    calls = metric(scraped, "batchd_backend_latency_seconds_count", model="flaky")
    assert flaky["calls"] == calls == 5 + 1 + 2  # every attempt: 3 retried 529s, 1 final 400, 4 answers
    assert flaky["retries"] == {"overloaded_error": 3}
    assert flaky["retries"]["overloaded_error"] == metric(
        scraped, "batchd_backend_errors_total", model="flaky", error_type="overloaded_error", retried="true"
    )
    assert flaky["errors"] == {"invalid_request_error": 1}
    assert flaky["latency_p50_ms"] is not None and flaky["latency_p99_ms"] >= flaky["latency_p50_ms"]
    assert flaky["probe"]["ok"]  # the upstream answers (a 404: it lists no models)
    row = page.locator("tr[data-route=flaky]")
    assert "overloaded_error 3" in row.locator("[data-field=retries]").text_content()
    assert "invalid_request_error 1" in row.locator("[data-field=errors]").text_content()
    limit = metric(scraped, "batchd_route_concurrency_limit", model="flaky")  # the batch calls' own
    assert flaky["adaptive_limit"] == limit and 1 <= limit <= 2
    assert row.locator("[data-field=adaptive_limit]").text_content() == f"{limit:.0f}"
    assert "this process" in page.locator("main").text_content()
    assert sum(upstream.seen[t] for t in texts) == 8


def test_another_workspace_sees_nothing_of_these_batches(browser: Any, srv: ServerProcess) -> None:
    ensure_batch(srv)
    mine = batch_ids(srv)
    other = logged_in(browser, srv, key=OTHER)
    try:
        listed = other.evaluate("fetch('/?format=json').then(r => r.json())")
        assert listed["batches"] == [] and listed["usage"]["by_model"] == {}
        for path in (
            f"/batches/{mine[0]}",
            f"/batches/{mine[0]}/results.jsonl",
            f"/batches/{mine[0]}/retry.jsonl",
        ):
            status = other.evaluate(f"fetch('{path}').then(r => r.status)")
            assert status == 404, path
        upstreams = other.evaluate("fetch('/upstreams?format=json').then(r => r.json())")
        assert "claude-sim" not in json.dumps(upstreams)  # routes only, never the models asked for
    finally:
        other.context.close()


def test_every_page_fits_360_px_without_scrolling_sideways(browser: Any, srv: ServerProcess) -> None:
    narrow = logged_in(browser, srv, width=360)
    try:
        batch_id = ensure_batch(srv)
        for name, path in (
            ("batches", "/"),
            ("new-batch", "/new"),
            ("batch", f"/batches/{batch_id}"),
            ("upstreams", "/upstreams"),
        ):
            narrow.goto(path)
            width = narrow.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, (path, width)
            shoot(narrow, name)
    finally:
        narrow.context.close()


def test_the_keyboard_reaches_everything(page: Any, srv: ServerProcess) -> None:
    def tab_to(selector: str, limit: int = 60) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(f"document.activeElement.matches({json.dumps(selector)})"):
                return
        raise AssertionError(f"Tab never reached {selector}")

    ensure_batch(srv)
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    tab_to("nav.site a[href='/new']")
    page.keyboard.press("Enter")
    page.wait_for_url(srv.base_url + "/new")
    tab_to("input[type=file]")
    page.goto("/")
    tab_to("table.batches a")
    page.keyboard.press("Enter")
    page.wait_for_url("**/batches/msgbatch_*")
    tab_to("[data-download=all]")
    tab_to("input[name=custom_id]")
    page.goto("/")
    tab_to("nav.site a[href='/upstreams']")
    page.keyboard.press("Enter")
    page.wait_for_url(srv.base_url + "/upstreams")


def test_an_upload_needs_this_dashboards_token_and_origin(page: Any, srv: ServerProcess) -> None:
    """A page elsewhere cannot create batches through a logged-in browser: its Origin is refused
    before any view (api/guard.py), and without the page's token (a header no other site can set
    without a CORS preflight) the upload is refused too."""
    before = batch_ids(srv)
    page.goto("/new")
    token = page.get_attribute("[data-upload]", "data-csrf")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    body, headers = jsonl_bytes(GOOD), {"content-type": "application/x-ndjson"}
    with httpx.Client(base_url=srv.base_url, cookies=cookies) as browser_like:
        foreign = {**headers, "origin": "http://evil.example", "x-csrf-token": token}
        assert browser_like.post("/batches/new", content=body, headers=foreign).status_code == 403
        as_form = {"content-type": "application/x-www-form-urlencoded", "origin": srv.base_url}
        assert browser_like.post("/batches/new", content=body, headers=as_form).status_code == 403
        assert (
            browser_like.post(
                "/batches/new", content=body, headers={**headers, "x-csrf-token": "x"}
            ).status_code
            == 403
        )
        answer = browser_like.post("/batches/new", content=body, headers={**headers, "x-csrf-token": token})
    assert answer.status_code == 200 and len(answer.json()["batches"]) == 1
    assert len(batch_ids(srv)) == len(before) + 1


def test_an_upload_keeps_to_the_workspace_quota(browser: Any, srv: ServerProcess) -> None:
    """Workspace `limited` may have one batch in progress: a file split in two creates the first,
    and the page says the quota stopped the second."""
    page = logged_in(browser, srv, key=LIMITED)
    try:
        items = [line(f"q{i}", "a quota test") for i in range(MAX_REQUESTS + 1)]
        upload(page, "quota.jsonl", jsonl_bytes(items))
        page.wait_for_function(
            "() => document.querySelector('[data-upload-status]').textContent.includes('stopped the rest')"
        )
        status = page.locator("[data-upload-status]").text_content()
        created = batch_ids(srv, LIMITED)
        assert len(created) == 1, status
        assert status.startswith(f"quota.jsonl: 1 of 2 batches were created ({created[0]})")
        assert page.url.endswith("/new")
    finally:
        page.context.close()

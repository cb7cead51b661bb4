"""The OpenAI Batch API (issue 16) through the official `openai` SDK, sync and async, against a real
`batchd serve` on the simulator: upload, create, poll, output and error files, list with
pagination, cancel, validation failures, delete, other workspaces."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import anthropic
import httpx
import openai
import orjson
import pytest

from tests.acceptance.openai_wire import (
    CHAT,
    MODEL,
    chat_line,
    jsonl,
    make_async_openai,
    make_openai,
    wait_terminal,
)
from tests.acceptance.server import ServerProcess


@pytest.fixture(scope="module")
def oai_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("batchd-openai"), {"BATCHD_SIM_LATENCY": "1ms"}).start()
    yield proc
    proc.stop()


@pytest.fixture
def oai(oai_server: ServerProcess) -> Iterator[openai.OpenAI]:
    with make_openai(oai_server.base_url) as client:
        yield client


def upload(client: openai.OpenAI, lines: list[object], name: str = "input.jsonl") -> str:
    return client.files.create(file=(name, jsonl(lines)), purpose="batch").id


def test_a_batch_runs_to_completed_with_an_output_file(oai: openai.OpenAI) -> None:
    file_id = upload(oai, [chat_line(f"r{i}", f"say {i}") for i in range(5)])
    batch = oai.batches.create(
        input_file_id=file_id, endpoint=CHAT, completion_window="24h", metadata={"job": "nightly"}
    )
    assert batch.id.startswith("batch_") and batch.status in ("in_progress", "completed")
    assert batch.object == "batch" and batch.endpoint == CHAT and batch.input_file_id == file_id
    assert batch.in_progress_at == batch.created_at and batch.expires_at == batch.created_at + 86400
    assert batch.metadata == {"job": "nightly"} and batch.model == MODEL
    assert batch._request_id and batch._request_id.startswith("req_")
    done = wait_terminal(oai, batch.id)
    assert done.status == "completed", done
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (5, 5, 0)
    assert done.finalizing_at is not None and done.completed_at is not None
    assert done.created_at <= done.finalizing_at <= done.completed_at
    assert done.error_file_id is None and done.output_file_id is not None
    assert done.usage is not None and done.usage.input_tokens > 0 and done.usage.output_tokens > 0
    meta = oai.files.retrieve(done.output_file_id)
    assert meta.purpose == "batch_output" and meta.filename == f"{batch.id}_output.jsonl"
    # 30 days after the file's creation, but no later than the results' archival (retention: 29 d)
    assert meta.expires_at is not None
    assert abs(meta.expires_at - min(meta.created_at + 30 * 86400, batch.created_at + 29 * 86400)) <= 1
    content = oai.files.content(done.output_file_id).read()
    assert len(content) == meta.bytes and content.endswith(b"\n")
    lines = [orjson.loads(line) for line in content.splitlines()]
    assert sorted(line["custom_id"] for line in lines) == [f"r{i}" for i in range(5)]
    for line in lines:
        assert line["id"].startswith("batch_req_") and line["error"] is None
        assert line["response"]["status_code"] == 200
        assert line["response"]["body"]["object"] == "chat.completion"
    again = oai.batches.retrieve(batch.id)  # every stamp set once: reading again changes nothing
    assert again.model_dump() == done.model_dump()


def test_cancel_mid_run_and_the_error_file(
    oai_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    slow = ServerProcess(
        tmp_path_factory.mktemp("batchd-slow"), {"BATCHD_SIM_LATENCY": "300ms", "BATCHD_CONCURRENCY": "2"}
    ).start()
    try:
        with make_openai(slow.base_url) as client:
            file_id = upload(client, [chat_line(f"c{i}") for i in range(40)])
            batch = client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
            cancelling = client.batches.cancel(batch.id)
            assert cancelling.status in ("cancelling", "cancelled") and cancelling.cancelling_at is not None
            done = wait_terminal(client, batch.id)
            assert done.status == "cancelled" and done.cancelled_at is not None and done.completed_at is None
            assert done.request_counts is not None and done.request_counts.total == 40
            assert done.request_counts.completed + done.request_counts.failed == 40
            assert done.error_file_id is not None
            errors = [orjson.loads(x) for x in client.files.content(done.error_file_id).read().splitlines()]
            cancelled = [e for e in errors if e["error"] and e["error"]["code"] == "batch_cancelled"]
            assert len(errors) == done.request_counts.failed and cancelled
            assert all(e["response"] is None and e["id"].startswith("batch_req_") for e in cancelled)
            with pytest.raises(openai.ConflictError) as info:
                client.batches.cancel(batch.id)
            assert info.value.response.headers["x-should-retry"] == "false"
            assert "Cannot cancel a batch with status 'cancelled'." in info.value.message
    finally:
        slow.stop()


@pytest.mark.parametrize(
    ("lines", "code", "line_number"),
    [
        ([chat_line("a"), b"{not json", chat_line("c")], "invalid_json_line", 2),
        ([chat_line("a"), chat_line("a")], "duplicate_custom_id", 2),
        ([chat_line("a"), chat_line("b", url="/v1/embeddings")], "url_mismatch", 2),
        ([chat_line("a"), chat_line("b", model="other-model")], "mismatched_model", 2),
        ([{"custom_id": "a", "method": "GET", "url": CHAT, "body": {"model": MODEL}}], "invalid_value", 1),
        ([{"custom_id": "a", "method": "POST", "url": CHAT}], "missing_required_parameter", 1),
        ([], "empty_file", None),
    ],
)
def test_validation_fails_the_batch_by_line(
    oai: openai.OpenAI, lines: list[object], code: str, line_number: int | None
) -> None:
    batch = oai.batches.create(input_file_id=upload(oai, lines), endpoint=CHAT, completion_window="24h")
    assert batch.status == "failed" and batch.failed_at == batch.created_at and batch.in_progress_at is None
    assert batch.errors is not None and batch.errors.data
    assert (batch.errors.data[0].code, batch.errors.data[0].line) == (code, line_number)
    assert batch.request_counts is not None and batch.request_counts.total == 0
    assert batch.output_file_id is None and batch.error_file_id is None
    with pytest.raises(openai.ConflictError):
        oai.batches.cancel(batch.id)


def test_too_many_lines_fail_the_batch(
    oai_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    small = ServerProcess(tmp_path_factory.mktemp("batchd-small"), {"BATCHD_MAX_REQUESTS": "3"}).start()
    try:
        with make_openai(small.base_url) as client:
            batch = client.batches.create(
                input_file_id=upload(client, [chat_line(f"x{i}") for i in range(4)]),
                endpoint=CHAT,
                completion_window="24h",
            )
            assert batch.status == "failed" and batch.errors is not None
            assert [e.code for e in batch.errors.data] == ["too_many_tasks"]
    finally:
        small.stop()


def test_bad_creates_are_400s_naming_the_field(oai: openai.OpenAI) -> None:
    file_id = upload(oai, [chat_line("a")])
    with pytest.raises(openai.BadRequestError) as info:
        oai.batches.create(input_file_id=file_id, endpoint="/v1/responses", completion_window="24h")  # type: ignore[arg-type]
    assert info.value.param == "endpoint" and "/v1/chat/completions" in info.value.message
    body = info.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}
    with pytest.raises(openai.BadRequestError) as info:
        oai.batches.create(input_file_id="file-nope", endpoint=CHAT, completion_window="24h")
    assert info.value.param == "input_file_id"
    with pytest.raises(openai.BadRequestError) as info:
        oai.batches.create(
            input_file_id=file_id,
            endpoint=CHAT,
            completion_window="24h",
            metadata={f"k{i}": "v" for i in range(17)},
        )
    assert info.value.param == "metadata"
    with pytest.raises(openai.BadRequestError) as info:
        oai.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="1h")  # type: ignore[arg-type]
    assert info.value.param == "completion_window"


def test_uploads_must_be_jsonl_batch_files(oai_server: ServerProcess, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match=r"Must be \.jsonl"):
        oai.files.create(file=("input.txt", b"{}\n"), purpose="batch")
    with pytest.raises(openai.BadRequestError) as info:
        oai.files.create(file=("input.jsonl", b"{}\n"), purpose="fine-tune")
    assert info.value.param == "purpose"
    with pytest.raises(openai.BadRequestError) as info:
        oai.files.create(
            file=("a.jsonl", b"{}\n"), purpose="batch", expires_after={"anchor": "created_at", "seconds": 60}
        )
    assert info.value.param == "expires_after.seconds"
    made = oai.files.create(
        file=("a.jsonl", b"{}\n"), purpose="batch", expires_after={"anchor": "created_at", "seconds": 7200}
    )
    assert made.expires_at == made.created_at + 7200 and made.status == "processed" and made.bytes == 3
    metrics = httpx.get(oai_server.base_url + "/metrics").text
    counted = [
        line for line in metrics.splitlines() if line.startswith("batchd_openai_uploaded_bytes_total ")
    ]
    assert counted and float(counted[0].split()[1]) >= 3  # refused uploads are not counted, this one is


def test_upload_over_200_mb_is_refused(oai_server: ServerProcess) -> None:
    chunk = b"x" * (1 << 20)

    def body() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n\r\n'
        for _ in range(201):
            yield chunk
        yield b"\r\n--b--\r\n"

    r = httpx.post(
        oai_server.base_url + "/v1/files",
        content=body(),
        headers={"content-type": "multipart/form-data; boundary=b", "authorization": "Bearer k"},
        timeout=60,
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "file", r.text
    assert r.headers["x-request-id"]


def test_files_list_retrieve_content_delete(oai: openai.OpenAI) -> None:
    data = jsonl([chat_line("a")])
    made = [oai.files.create(file=(f"f{i}.jsonl", data), purpose="batch") for i in range(3)]
    assert oai.files.content(made[0].id).read() == data
    assert oai.files.retrieve(made[1].id).model_dump() == made[1].model_dump()
    ids = [f.id for f in oai.files.list(limit=1, purpose="batch")]  # auto-paging, one file a page
    assert ids[:3] == [f.id for f in reversed(made)]
    ascending = [f.id for f in oai.files.list(order="asc", purpose="batch")]
    assert ascending.index(made[0].id) < ascending.index(made[2].id)
    deleted = oai.files.delete(made[0].id)
    assert deleted.deleted and deleted.id == made[0].id
    with pytest.raises(openai.NotFoundError) as info:
        oai.files.retrieve(made[0].id)
    assert info.value.code == "not_found" and info.value.param == "id"
    with pytest.raises(openai.NotFoundError):
        oai.files.content(made[0].id)


def test_batches_list_pages_newest_first(oai: openai.OpenAI) -> None:
    file_id = upload(oai, [chat_line("a")])
    made = [
        oai.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h").id for _ in range(3)
    ]
    page = oai.batches.list(limit=2)
    assert [b.id for b in page.data] == made[::-1][:2] and page.has_more
    ids = [b.id for b in oai.batches.list(limit=1)]  # the SDK pages on with after=<last id>
    assert ids[:3] == made[::-1] and len(ids) == len(set(ids))
    with pytest.raises(openai.BadRequestError):
        oai.batches.list(limit=101)


async def test_the_async_sdk(oai_server: ServerProcess) -> None:
    async with make_async_openai(oai_server.base_url) as client:
        made = await client.files.create(
            file=("a.jsonl", jsonl([chat_line("a"), chat_line("b")])), purpose="batch"
        )
        batch = await client.batches.create(input_file_id=made.id, endpoint=CHAT, completion_window="24h")
        seen = [b.id async for b in client.batches.list(limit=1)]
        assert batch.id in seen
        for _ in range(600):
            batch = await client.batches.retrieve(batch.id)
            if batch.status == "completed":
                break
        assert batch.status == "completed" and batch.output_file_id
        content = await (await client.files.content(batch.output_file_id)).aread()
        assert len(content.splitlines()) == 2


def test_other_workspaces_get_404(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(api_keys="key-a:team-a,key-b:team-b")
    with make_openai(srv.base_url, api_key="key-a") as a, make_openai(srv.base_url, api_key="key-b") as b:
        file_id = upload(a, [chat_line("a")])
        batch = a.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
        calls: list[Callable[[], object]] = [
            lambda: b.files.retrieve(file_id),
            lambda: b.files.content(file_id),
            lambda: b.files.delete(file_id),
            lambda: b.batches.retrieve(batch.id),
            lambda: b.batches.cancel(batch.id),
        ]
        for call in calls:
            with pytest.raises(openai.NotFoundError):
                call()
        with pytest.raises(openai.BadRequestError):
            b.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
        assert [x.id for x in b.batches.list()] == [] and [f.id for f in b.files.list()] == []
        with (
            make_openai(srv.base_url, api_key="wrong") as stranger,
            pytest.raises(openai.AuthenticationError) as info,
        ):
            stranger.batches.list()
        assert info.value.code == "invalid_api_key"


def test_both_sdks_on_one_files_api(oai_server: ServerProcess, oai: openai.OpenAI) -> None:
    oai_file = upload(oai, [chat_line("a")])
    batch = oai.batches.create(input_file_id=oai_file, endpoint=CHAT, completion_window="24h")
    with anthropic.Anthropic(base_url=oai_server.base_url, api_key="k", max_retries=0) as claude:
        mine = claude.beta.files.upload(file=("notes.txt", b"hello", "text/plain"))
        assert mine.id.startswith("file_") and mine.type == "file"
        assert claude.beta.files.retrieve_metadata(mine.id).filename == "notes.txt"
        listed = [f.id for f in claude.beta.files.list()]
        assert mine.id in listed and oai_file not in listed
        with pytest.raises(anthropic.NotFoundError):  # an OpenAI file is no Anthropic file
            claude.beta.files.retrieve_metadata(oai_file)
        with pytest.raises(anthropic.NotFoundError):  # nor is an OpenAI batch a Message Batch
            claude.messages.batches.retrieve(batch.id)
        assert batch.id not in [b.id for b in claude.messages.batches.list(limit=100)]
        claude.beta.files.delete(mine.id)
    assert oai_file in [f.id for f in oai.files.list(purpose="batch")]
    assert mine.id not in [f.id for f in oai.files.list()]


def test_a_batch_not_done_in_its_window_expires(tmp_path_factory: pytest.TempPathFactory) -> None:
    env = {
        "BATCHD_BATCH_LIFETIME": "1s",
        "BATCHD_EXPIRY_GRACE": "1s",
        "BATCHD_SIM_LATENCY": "200ms",
        "BATCHD_CONCURRENCY": "1",
        "BATCHD_MAINTENANCE_INTERVAL": "0.2s",
    }
    srv = ServerProcess(tmp_path_factory.mktemp("batchd-expiry"), env).start()
    try:
        with make_openai(srv.base_url) as client:
            file_id = upload(client, [chat_line(f"e{i}") for i in range(30)])
            batch = client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
            assert batch.expires_at == batch.created_at + 1
            done = wait_terminal(client, batch.id, timeout=30)
            assert done.status == "expired" and done.expired_at is not None and done.completed_at is None
            assert done.finalizing_at is not None and done.finalizing_at <= done.expired_at
            assert done.request_counts is not None and done.request_counts.total == 30
            assert done.error_file_id is not None and done.request_counts.failed > 0
            errors = [orjson.loads(x) for x in client.files.content(done.error_file_id).read().splitlines()]
            expired = [e for e in errors if e["error"] and e["error"]["code"] == "batch_expired"]
            assert len(errors) == done.request_counts.failed and expired
            assert "completion window expired" in expired[0]["error"]["message"]
            listed = [f.id for f in client.files.list(purpose="batch_output")]
            assert done.error_file_id in listed
            assert (done.output_file_id in listed) == (done.request_counts.completed > 0)
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("endpoint", "body", "kind"),
    [
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["one", "two"]}, "list"),
        (
            "/v1/completions",
            {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi", "max_tokens": 8},
            "text_completion",
        ),
    ],
)
def test_embeddings_and_completions_batches(
    oai: openai.OpenAI, endpoint: str, body: dict[str, object], kind: str
) -> None:
    lines = [{"custom_id": f"{kind}-{i}", "method": "POST", "url": endpoint, "body": body} for i in range(3)]
    batch = oai.batches.create(input_file_id=upload(oai, lines), endpoint=endpoint, completion_window="24h")  # type: ignore[arg-type]
    done = wait_terminal(oai, batch.id)
    assert done.status == "completed" and done.output_file_id and done.model == body["model"]
    assert done.usage is not None and done.usage.input_tokens > 0
    out = [orjson.loads(x) for x in oai.files.content(done.output_file_id).read().splitlines()]
    assert sorted(x["custom_id"] for x in out) == [f"{kind}-{i}" for i in range(3)]
    assert all(x["response"]["body"]["object"] == kind for x in out)


def test_the_upload_form_in_any_order(oai_server: ServerProcess) -> None:
    def post(parts: list[bytes]) -> httpx.Response:
        body = b"".join(b"--b\r\n" + part + b"\r\n" for part in parts) + b"--b--\r\n"
        headers = {"content-type": "multipart/form-data; boundary=b", "authorization": "Bearer k"}
        return httpx.post(oai_server.base_url + "/v1/files", content=body, headers=headers)

    file_part = b'Content-Disposition: form-data; name="file"; filename="dir/x.jsonl"\r\n\r\n{"a": 1}\n'
    purpose = b'Content-Disposition: form-data; name="purpose"\r\n\r\nbatch'
    r = post([file_part, purpose])  # the purpose after the file
    assert r.status_code == 200 and r.json()["filename"] == "x.jsonl" and r.json()["bytes"] == 9, r.text
    assert r.headers["x-request-id"] == r.headers["request-id"]
    r = post([purpose])
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    r = post([file_part])
    assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"
    r = post([file_part, file_part, purpose])
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"


def test_quotas_hold_for_openai_batches(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(quota_batches="1", sim_latency="500ms", concurrency="1")
    with make_openai(srv.base_url) as client:
        file_id = upload(client, [chat_line(f"q{i}") for i in range(20)])
        first = client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
        with pytest.raises(openai.RateLimitError) as info:
            client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
        assert info.value.code == "rate_limit_exceeded" and info.value.response.headers["retry-after"]
        assert [b.id for b in client.batches.list()] == [first.id]  # nothing of the refused one

"""The dashboard shows OpenAI batches (issue 16, item 5) beside Message Batches, over plain HTTP with a
logged-in session against a real `batchd serve` on the simulator: batches made with the official
`openai` and `anthropic` SDKs share one list, newest first, each with its kind; an OpenAI batch's page
shows its endpoint, model, input file, summaries and usage equal to the output file's; its downloads
are byte for byte the API's output and error files, its retry file the failed input lines; another
workspace sees none of it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from batchd.cli.openai_submit import is_openai_file
from tests.acceptance.conftest import simple_request, wait_ended
from tests.acceptance.openai_wire import CHAT, MODEL, chat_line, jsonl, make_openai, wait_terminal
from tests.acceptance.server import ServerProcess
from tests.acceptance.test_dashboard import log_in

KEY, OTHER = "key-a", "key-b"
EMBEDDINGS = "/v1/embeddings"
CHAT_LINES = [
    chat_line("ok-1", "hello there"),
    chat_line("bad-1", "this fails @sim:error=invalid_request"),
    chat_line("ok-2", "tell me a story @sim:tokens=17"),
    chat_line("bad-2", "so does this @sim:error=permission"),
]
EMBED_LINES = [
    {
        "custom_id": f"e{i}",
        "method": "POST",
        "url": EMBEDDINGS,
        "body": {"model": "text-embedding-3-small", "input": "hi"},
    }
    for i in range(2)
]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "BATCHD_API_KEYS": f"{KEY}:team-a,{OTHER}:team-b",
        "BATCHD_SIM_LATENCY": "1ms",
        "BATCHD_CONCURRENCY": "4",
    }
    proc = ServerProcess(tmp_path_factory.mktemp("batchd-dash-openai"), env).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def oai(srv: ServerProcess) -> Iterator[openai.OpenAI]:
    with make_openai(srv.base_url, api_key=KEY) as client:
        yield client


@pytest.fixture(scope="module")
def made(srv: ServerProcess, oai: openai.OpenAI) -> dict[str, Any]:
    """A Message Batch, then an OpenAI chat batch (two lines fail), then an embeddings batch, each ended."""
    claude = anthropic.Anthropic(
        base_url=srv.base_url, api_key=KEY, _strict_response_validation=True, max_retries=0
    )
    with claude:
        messages = claude.messages.batches.create(requests=[simple_request("m1"), simple_request("m2")])  # type: ignore[list-item]
        wait_ended(claude, messages.id, 2)
    ids = {"messages": messages.id}
    for name, lines, endpoint in (("chat", CHAT_LINES, CHAT), ("embeddings", EMBED_LINES, EMBEDDINGS)):
        file_id = oai.files.create(file=(f"{name}.jsonl", jsonl(lines)), purpose="batch").id
        batch = oai.batches.create(input_file_id=file_id, endpoint=endpoint, completion_window="24h")  # type: ignore[arg-type]
        ids[name] = wait_terminal(oai, batch.id).id
    return ids


@contextlib.contextmanager
def session(srv: ServerProcess, key: str = KEY) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.base_url, timeout=30) as http:
        assert log_in(http, key).status_code == 303
        yield http


def test_one_list_holds_both_kinds_newest_first(srv: ServerProcess, made: dict[str, Any]) -> None:
    with session(srv) as http:
        listed = http.get("/", params={"format": "json"}).json()["batches"]
        assert [b["id"] for b in listed] == [made["embeddings"], made["chat"], made["messages"]]
        kinds = {b["id"]: b["kind"] for b in listed}
        assert kinds[made["messages"]] == {"wire": "messages", "label": "Messages", "status": None}
        chat = kinds[made["chat"]]
        assert (chat["wire"], chat["label"], chat["status"]) == ("openai", f"OpenAI · {CHAT}", "completed")
        assert kinds[made["embeddings"]]["label"] == f"OpenAI · {EMBEDDINGS}"
        html = http.get("/").text
        assert f"OpenAI · {CHAT}" in html and ">Messages<" in html and "data-wire-status>completed<" in html
        ended = http.get("/", params={"format": "json", "status": "ended"}).json()["batches"]
        assert len(ended) == 3
        assert http.get("/", params={"format": "json", "status": "in_progress"}).json()["batches"] == []
        older = http.get("/", params={"format": "json", "after_id": made["chat"]}).json()["batches"]
        assert [b["id"] for b in older] == [made["messages"]]


def output_usage(output: bytes) -> dict[str, dict[str, int]]:
    sums: dict[str, dict[str, int]] = {}
    for raw in output.splitlines():
        body = orjson.loads(raw)["response"]["body"]
        usage = body["usage"]
        mine = sums.setdefault(
            body["model"], {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0}
        )
        mine["input_tokens"] += usage["prompt_tokens"]
        mine["output_tokens"] += usage.get("completion_tokens", 0)
        mine["cache_read_input_tokens"] += (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    return sums


def test_an_openai_batch_page_shows_its_kind_summaries_and_usage(
    srv: ServerProcess, oai: openai.OpenAI, made: dict[str, Any]
) -> None:
    batch = oai.batches.retrieve(made["chat"])
    assert batch.output_file_id and batch.error_file_id
    output = oai.files.content(batch.output_file_id).read()
    errors = {
        orjson.loads(x)["custom_id"]: orjson.loads(x)
        for x in oai.files.content(batch.error_file_id).read().splitlines()
    }
    replies = {orjson.loads(x)["custom_id"]: orjson.loads(x) for x in output.splitlines()}
    with session(srv) as http:
        page = http.get(f"/batches/{made['chat']}", params={"format": "json"}).json()
        kind = page["kind"]
        assert kind["endpoint"] == CHAT and kind["model"] == MODEL and kind["status"] == "completed"
        assert kind["input_file_id"] == batch.input_file_id
        by_id = {r["custom_id"]: r for r in page["results"]}
        assert list(by_id) == ["ok-1", "bad-1", "ok-2", "bad-2"]
        for cid in ("ok-1", "ok-2"):
            text = replies[cid]["response"]["body"]["choices"][0]["message"]["content"]
            assert by_id[cid]["summary"] == " ".join(text.split())[:160] + ("…" if len(text) > 160 else "")
            assert by_id[cid]["result"] == replies[cid] and by_id[cid]["openai"]["model"] == MODEL
        for cid in ("bad-1", "bad-2"):
            message = errors[cid]["response"]["body"]["error"]["message"]
            assert message and message in by_id[cid]["summary"] and by_id[cid]["error"]["message"] == message
            assert by_id[cid]["result"] == errors[cid]
        used = page["usage"]["by_model"]
        assert {
            m: {k: u[k] for k in ("input_tokens", "output_tokens", "cache_read_input_tokens")}
            for m, u in used.items()
        } == output_usage(output)
        assert used[MODEL]["output_tokens"] > 0
        html = http.get(f"/batches/{made['chat']}").text
        assert "Input file" in html and batch.input_file_id in html and 'data-download="output"' in html
        assert 'data-download="error"' in html and 'data-action="delete"' not in html
        embed = http.get(f"/batches/{made['embeddings']}", params={"format": "json"}).json()
        embed_out = oai.files.content(oai.batches.retrieve(made["embeddings"]).output_file_id or "").read()
        dims = len(orjson.loads(embed_out.splitlines()[0])["response"]["body"]["data"][0]["embedding"])
        assert [r["summary"] for r in embed["results"]] == [f"embedding, {dims} dims"] * 2
        # An OpenAI batch is not deleted through the dashboard (OpenAI's API deletes no batch).
        token = http.get(f"/batches/{made['chat']}").text.split('name="csrf_token" value="')[1].split('"')[0]
        refused = http.post(
            f"/batches/{made['chat']}/delete", data={"csrf_token": token}, headers={"origin": srv.base_url}
        )
        assert refused.status_code == 400
    assert oai.batches.retrieve(made["chat"]).status == "completed"


def test_downloads_are_the_apis_files_and_the_retry_file_the_failed_input_lines(
    srv: ServerProcess, oai: openai.OpenAI, made: dict[str, Any], tmp_path: Path
) -> None:
    batch = oai.batches.retrieve(made["chat"])
    assert batch.output_file_id and batch.error_file_id
    with session(srv) as http:
        base = f"/batches/{made['chat']}"
        output = http.get(f"{base}/results.jsonl", params={"file": "output"})
        assert output.status_code == 200 and output.content == oai.files.content(batch.output_file_id).read()
        error = http.get(f"{base}/results.jsonl", params={"file": "error"}).content
        assert error == oai.files.content(batch.error_file_id).read()
        every = http.get(f"{base}/results.jsonl").content
        ordered = {orjson.loads(x)["custom_id"]: x for x in (output.content + error).splitlines()}
        assert every.splitlines() == [ordered[c["custom_id"]] for c in CHAT_LINES]
        errored = http.get(f"{base}/results.jsonl", params={"type": "errored"}).content
        assert errored == error
        retry = http.get(f"{base}/retry.jsonl").content
        assert retry == jsonl([line for line in CHAT_LINES if str(line["custom_id"]).startswith("bad")])
        (tmp_path / "retry.jsonl").write_bytes(retry)
        assert is_openai_file(str(tmp_path / "retry.jsonl"))
        assert http.get(f"{base}/results.jsonl", params={"file": "both"}).status_code == 400


def test_a_cancelled_batch_downloads_as_its_error_file(srv: ServerProcess, oai: openai.OpenAI) -> None:
    lines = [chat_line(f"slow-{i}", "wait @sim:delay=0.3") for i in range(12)]
    file_id = oai.files.create(file=("slow.jsonl", jsonl(lines)), purpose="batch").id
    batch = oai.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
    oai.batches.cancel(batch.id)
    with session(srv) as http:
        shown = http.get(f"/batches/{batch.id}", params={"format": "json"}).json()
        assert shown["kind"]["status"] in ("cancelling", "cancelled")
        done = wait_terminal(oai, batch.id)
        assert done.status == "cancelled" and done.error_file_id
        error = http.get(f"/batches/{batch.id}/results.jsonl", params={"file": "error"}).content
        assert error == oai.files.content(done.error_file_id).read()
        codes = {orjson.loads(x)["error"]["code"] for x in error.splitlines()}
        assert codes == {"batch_cancelled"}
        page = http.get(f"/batches/{batch.id}", params={"format": "json", "type": "canceled"}).json()
        assert page["results"] and all(r["summary"].startswith("batch_cancelled: ") for r in page["results"])
        assert page["kind"]["status"] == "cancelled"


def test_another_workspace_sees_none_of_it(srv: ServerProcess, made: dict[str, Any]) -> None:
    with session(srv, OTHER) as http:
        assert http.get("/", params={"format": "json"}).json()["batches"] == []
        for path in (
            f"/batches/{made['chat']}",
            f"/batches/{made['chat']}/results.jsonl",
            f"/batches/{made['chat']}/results.jsonl?file=output",
            f"/batches/{made['chat']}/retry.jsonl",
        ):
            assert http.get(path).status_code == 404, path

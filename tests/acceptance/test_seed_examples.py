"""The seed document's examples, run as written: only the base URL and polling interval differ.

The seed is the SDK's beta-batches page; its `client` is an `anthropic.Anthropic()` pointed at
batchd through ANTHROPIC_BASE_URL. Its placeholder id "batch_abc123" is replaced by a real id.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator

import anthropic
import pytest
from anthropic import AsyncAnthropic

from tests.acceptance.server import ServerProcess

POLL = 0.05  # the seed polls every 60 s


@pytest.fixture
def client(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[anthropic.Anthropic]:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "seed-key")
    with anthropic.Anthropic(_strict_response_validation=True) as c:
        yield c


def make_pdf() -> str:
    from fpdf import FPDF

    pdf = FPDF()
    for text in ("Llamas are domesticated South American camelids.", "They live in herds and hum softly."):
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 10, text)
    return base64.b64encode(bytes(pdf.output())).decode()


def wait(client: anthropic.Anthropic, batch_id: str) -> anthropic.types.beta.messages.BetaMessageBatch:
    while True:
        batch = client.beta.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        time.sleep(POLL)


def test_basic_batch_then_wait_and_results(
    client: anthropic.Anthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = client.beta.messages.batches.create(
        requests=[
            {
                "custom_id": "request-1",
                "params": {
                    "model": "claude-sonnet-4-5-20250929",
                    "max_tokens": 2048,
                    "thinking": {"type": "enabled"},
                    "messages": [{"role": "user", "content": "Solve this problem..."}],
                },
            },
            {
                "custom_id": "request-2",
                "params": {
                    "model": "claude-sonnet-4-5-20250929",
                    "max_tokens": 2048,
                    "web_search": {"type": "enabled"},
                    "messages": [{"role": "user", "content": "What are the latest news?"}],
                },
            },
        ]
    )
    print(f"Batch ID: {batch.id}")

    # Wait for completion
    while True:
        batch = client.beta.messages.batches.retrieve(batch.id)
        if batch.processing_status == "ended":
            break
        print(f"Processing: {batch.request_counts.processing} requests remaining")
        time.sleep(POLL)

    # Process results
    for response in client.beta.messages.batches.results(batch.id):
        if response.result.type == "succeeded":
            print(f"{response.custom_id}: Success")
            # Access beta feature content
            for block in response.result.message.content:
                if block.type == "thinking":
                    print(f"  Reasoning: {block.thinking[:100]}...")
                elif block.type == "text":
                    print(f"  Response: {block.text[:100]}...")
        elif response.result.type == "errored":
            print(f"{response.custom_id}: Error - {response.result.error.message}")

    out = capsys.readouterr().out
    assert "request-1: Success" in out and "request-2: Success" in out
    assert "Reasoning: " in out and "Response: " in out

    by_id = {r.custom_id: r.result for r in client.beta.messages.batches.results(batch.id)}
    web = by_id["request-2"].message
    kinds = [b.type for b in web.content]
    assert kinds.index("server_tool_use") + 1 == kinds.index("web_search_tool_result")
    assert web.usage.server_tool_use.web_search_requests >= 1


def test_mixed_beta_features(client: anthropic.Anthropic) -> None:
    pdf_data = make_pdf()
    requests = [
        {
            "custom_id": "thinking-1",
            "params": {
                "model": "claude-sonnet-4-5-20250929",
                "max_tokens": 4096,
                "thinking": {"type": "enabled", "budget_tokens": 2000},
                "messages": [{"role": "user", "content": "Complex reasoning task"}],
            },
        },
        {
            "custom_id": "citations-1",
            "params": {
                "model": "claude-sonnet-4-5-20250929",
                "max_tokens": 2048,
                "citations": {"type": "enabled"},
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {
                                    "type": "base64",
                                    "media_type": "application/pdf",
                                    "data": pdf_data,
                                },
                            },
                            {"type": "text", "text": "Summarize with citations"},
                        ],
                    }
                ],
            },
        },
        {
            "custom_id": "web-search-1",
            "params": {
                "model": "claude-sonnet-4-5-20250929",
                "max_tokens": 2048,
                "web_search": {"type": "enabled"},
                "messages": [{"role": "user", "content": "Latest AI news"}],
            },
        },
        {
            "custom_id": "combined-1",
            "params": {
                "model": "claude-sonnet-4-5-20250929",
                "max_tokens": 4096,
                "thinking": {"type": "enabled"},
                "web_search": {"type": "enabled"},
                "code_execution": {"type": "enabled"},
                "messages": [{"role": "user", "content": "Research and code solution"}],
            },
        },
    ]
    batch = client.beta.messages.batches.create(requests=requests)
    wait(client, batch.id)
    by_id = {r.custom_id: r.result for r in client.beta.messages.batches.results(batch.id)}
    assert {k: v.type for k, v in by_id.items()} == dict.fromkeys(
        ["thinking-1", "citations-1", "web-search-1", "combined-1"], "succeeded"
    )
    assert by_id["thinking-1"].message.content[0].type == "thinking"
    cited = [c for b in by_id["citations-1"].message.content if b.type == "text" for c in (b.citations or [])]
    assert cited and {c.type for c in cited} == {"page_location"}
    assert any("Llamas" in c.cited_text or "herds" in c.cited_text for c in cited)
    combined = [b.type for b in by_id["combined-1"].message.content]
    assert combined[0] == "thinking"
    assert "web_search_tool_result" in combined
    assert any(t.endswith("code_execution_tool_result") for t in combined)


def test_large_scale_beta_batch(client: anthropic.Anthropic, capsys: pytest.CaptureFixture[str]) -> None:
    # Process thousands of requests with beta features
    requests = []
    for i in range(5000):
        requests.append(
            {
                "custom_id": f"request-{i}",
                "params": {
                    "model": "claude-sonnet-4-5-20250929",
                    "max_tokens": 2048,
                    "thinking": {"type": "enabled"},
                    "messages": [{"role": "user", "content": f"Task {i}: ..."}],
                },
            }
        )

    batch = client.beta.messages.batches.create(requests=requests)
    print(f"Created batch {batch.id} with {len(requests)} requests")

    # Monitor progress
    while True:
        batch = client.beta.messages.batches.retrieve(batch.id)
        completed = batch.request_counts.succeeded + batch.request_counts.errored
        total = completed + batch.request_counts.processing
        progress = (completed / total * 100) if total > 0 else 0
        print(f"Progress: {progress:.1f}% ({completed}/{total})")
        if batch.processing_status == "ended":
            break
        time.sleep(POLL)

    # Process all results
    results_by_id = {}
    for response in client.beta.messages.batches.results(batch.id):
        results_by_id[response.custom_id] = response.result

    print(f"Processed {len(results_by_id)} results")
    assert "Processed 5000 results" in capsys.readouterr().out
    assert all(r.type == "succeeded" for r in results_by_id.values())


def test_async_batch_operations(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "seed-key")

    async def main():  # type: ignore[no-untyped-def]
        client = AsyncAnthropic()

        # Create batch
        batch = await client.beta.messages.batches.create(
            requests=[
                {
                    "custom_id": "async-1",
                    "params": {
                        "model": "claude-sonnet-4-5-20250929",
                        "max_tokens": 2048,
                        "thinking": {"type": "enabled"},
                        "messages": [{"role": "user", "content": "Task 1"}],
                    },
                },
                {
                    "custom_id": "async-2",
                    "params": {
                        "model": "claude-sonnet-4-5-20250929",
                        "max_tokens": 2048,
                        "web_search": {"type": "enabled"},
                        "messages": [{"role": "user", "content": "Task 2"}],
                    },
                },
            ]
        )

        # Poll until complete
        while True:
            batch = await client.beta.messages.batches.retrieve(batch.id)
            if batch.processing_status == "ended":
                break
            await asyncio.sleep(POLL)

        # Get results
        results = []
        async for response in await client.beta.messages.batches.results(batch.id):
            results.append(response)

        await client.close()
        return results

    results = asyncio.run(main())
    assert sorted(r.custom_id for r in results) == ["async-1", "async-2"]
    assert all(r.result.type == "succeeded" for r in results)


def test_cancel_delete_list_and_error_handling(
    client: anthropic.Anthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    slow = client.beta.messages.batches.create(
        requests=[
            {
                "custom_id": f"slow-{i}",
                "params": {
                    "model": "claude-sonnet-4-5-20250929",
                    "max_tokens": 64,
                    "messages": [{"role": "user", "content": "@sim:delay=0.5"}],
                },
            }
            for i in range(600)
        ]
    )
    batch_abc123 = slow.id

    # Cancel batch in progress
    batch = client.beta.messages.batches.cancel(batch_abc123)
    print(f"Status: {batch.processing_status}")  # "canceling"

    # Wait for cancellation to complete
    while True:
        batch = client.beta.messages.batches.retrieve(batch.id)
        if batch.processing_status == "ended":
            break
        time.sleep(POLL)

    print(f"Canceled: {batch.request_counts.canceled} requests")
    assert batch.request_counts.canceled > 0

    # Delete completed batch
    deleted = client.beta.messages.batches.delete(batch_abc123)
    print(f"Deleted batch: {deleted.id}")

    # List recent batches
    for batch in client.beta.messages.batches.list(limit=10):
        print(f"{batch.id}: {batch.processing_status}")
        print(f"  Succeeded: {batch.request_counts.succeeded}")
        print(f"  Errored: {batch.request_counts.errored}")
        print(f"  Processing: {batch.request_counts.processing}")

    from anthropic import APIError

    try:
        batch = client.beta.messages.batches.create(requests=[])
    except APIError as e:
        print(f"Failed to create batch: {e.message}")

    out = capsys.readouterr().out
    assert "Status: canceling" in out
    assert f"Deleted batch: {batch_abc123}" in out
    assert "Failed to create batch: " in out and "at least 1 item" in out


def test_handle_all_result_types(client: anthropic.Anthropic) -> None:
    batch = client.beta.messages.batches.create(
        requests=[
            {
                "custom_id": "ok",
                "params": {"model": "m", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]},
            },
            {"custom_id": "bad", "params": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}},
        ]
    )
    wait(client, batch.id)
    success_count = error_count = canceled_count = expired_count = 0
    for response in client.beta.messages.batches.results(batch.id):
        if response.result.type == "succeeded":
            success_count += 1
        elif response.result.type == "errored":
            error_count += 1
            assert "max_tokens" in response.result.error.error.message
        elif response.result.type == "canceled":
            canceled_count += 1
        elif response.result.type == "expired":
            expired_count += 1
    assert (success_count, error_count, canceled_count, expired_count) == (1, 1, 0, 0)

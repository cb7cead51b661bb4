"""The OpenAI wire's rows on each store (SQLite and PostgreSQL): uploads in chunks, unlisted until
complete, scoped, paged and expired; a batch and its engine batch in one transaction (nothing of
either when the quota refuses it); failed batches without an engine batch; output and error files
listed once a batch is closed, the first close winning."""

from __future__ import annotations

import pytest

from batchd import exceptions, models
from batchd.config.quotas import Quota
from batchd.store import Store
from batchd.store.openai import INCOMPLETE_TTL, Closing, OpenAIBatch, OpenAIFile


def upload(i: int, workspace: str = "a", created: float = 100.0, expires: float | None = 1e6) -> OpenAIFile:
    return OpenAIFile(f"file-{i:022}", workspace, f"in{i}.jsonl", "batch", 0, created + i, expires)


async def stored(store: Store, file: OpenAIFile, chunks: list[bytes]) -> OpenAIFile:
    await store.begin_openai_file(file)
    await store.put_openai_chunks(file.id, 0, chunks[:2])
    if chunks[2:]:
        await store.put_openai_chunks(file.id, 2, chunks[2:])
    file = file._replace(bytes=sum(map(len, chunks)))
    await store.complete_openai_file(file)
    return file


async def content(store: Store, file_id: str) -> bytes:
    return b"".join([c async for c in store.iter_openai_chunks(file_id)])


def batch(workspace: str = "a", *, failed: bool = False, created: float = 1000.0) -> OpenAIBatch:
    return OpenAIBatch(
        id=models.new_openai_batch_id(),
        workspace=workspace,
        input_file_id="file-x",
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata='{"k":"v"}',
        model=None if failed else "m",
        created_at=created,
        expires_at=created + 86400,
        failed_at=created if failed else None,
        errors='[{"code":"empty_file"}]' if failed else None,
        output_expires_after=3600.0,
        output_file_id=models.new_openai_file_id(),
        error_file_id=models.new_openai_file_id(),
    )


LINE = b'{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}'


async def test_an_upload_is_listed_only_once_complete_and_reads_back_in_order(store: Store) -> None:
    first = upload(1)
    await store.begin_openai_file(first)
    await store.put_openai_chunks(first.id, 0, [b"ab", b"cd"])
    assert await store.get_openai_file("a", first.id, now=200.0) is None  # not complete yet
    assert (
        await store.list_openai_files("a", now=200.0, limit=10, after=None, ascending=False, purpose=None)
        == []
    )
    await store.put_openai_chunks(first.id, 2, [b"ef"])
    await store.complete_openai_file(first._replace(bytes=6, filename="x.jsonl"))
    found = await store.get_openai_file("a", first.id, now=200.0)
    assert found == first._replace(bytes=6, filename="x.jsonl")
    assert await content(store, first.id) == b"abcdef"
    assert await store.get_openai_file("b", first.id, now=200.0) is None  # another workspace's
    assert not await store.delete_openai_file("b", first.id)


async def test_files_page_both_ways_by_purpose(store: Store) -> None:
    files = [await stored(store, upload(i), [b"x"]) for i in range(5)]
    await stored(store, upload(9, "b"), [b"y"])
    page = await store.list_openai_files("a", now=200.0, limit=2, after=None, ascending=False, purpose=None)
    assert page == files[::-1][:2]
    page = await store.list_openai_files(
        "a", now=200.0, limit=10, after=page[-1], ascending=False, purpose=None
    )
    assert page == files[::-1][2:]
    page = await store.list_openai_files(
        "a", now=200.0, limit=2, after=files[1], ascending=True, purpose="batch"
    )
    assert page == files[2:4]
    assert (
        await store.list_openai_files("a", now=200.0, limit=9, after=None, ascending=True, purpose="x") == []
    )


async def test_expired_and_abandoned_uploads_are_swept(store: Store) -> None:
    kept = await stored(store, upload(1, expires=None), [b"kept"])
    gone = await stored(store, upload(2, expires=500.0), [b"gone"])
    await store.begin_openai_file(upload(3))  # a crash cut this upload short
    await store.put_openai_chunks(upload(3).id, 0, [b"half"])
    assert await store.get_openai_file("a", gone.id, now=600.0) is None  # expired: not served
    assert await store.expire_openai_files(now=600.0) == 1
    assert await store.expire_openai_files(now=103.0 + INCOMPLETE_TTL) == 1
    assert await content(store, gone.id) == b"" and await content(store, upload(3).id) == b""
    assert await store.get_openai_file("a", kept.id, now=1e12) == kept


async def test_a_batch_and_its_engine_batch_commit_together(store: Store) -> None:
    made = batch()
    await store.create_openai_batch(made, custom_ids=["a", "b"], params=[LINE, LINE], quota=None)
    row = await store.get_openai_batch("a", made.id)
    assert row is not None and row.status == "in_progress" and row.n_processing == 2
    assert (await store.get_batch("a", made.id)).request_counts.processing == 2
    assert await store.get_openai_batch("b", made.id) is None
    full = Quota(queued_requests=2)  # two are queued already
    refused = batch()
    with pytest.raises(exceptions.QuotaExceeded):
        await store.create_openai_batch(refused, custom_ids=["a"], params=[LINE], quota=full)
    assert await store.get_openai_batch("a", refused.id) is None  # neither row was written
    with pytest.raises(exceptions.BatchNotFound):
        await store.get_batch("a", refused.id)


async def test_a_failed_batch_has_no_engine_batch_and_batches_page_newest_first(store: Store) -> None:
    made = [batch(failed=i == 1) for i in range(3)]
    for b in made:
        await store.create_openai_batch(
            b, custom_ids=[] if b.failed_at else ["a"], params=[] if b.failed_at else [LINE], quota=None
        )
    failed = await store.get_openai_batch("a", made[1].id)
    assert (
        failed is not None
        and failed.failed_at == 1000.0
        and failed.status is None
        and failed.engine_seq is None
    )
    page, more = await store.list_openai_batches("a", after_id=None, limit=2)
    assert [r.id for r in page] == [made[2].id, made[1].id] and more
    page, more = await store.list_openai_batches("a", after_id=page[-1].id, limit=2)
    assert [r.id for r in page] == [made[0].id] and not more
    assert await store.list_openai_batches("b", after_id=None, limit=2) == ([], False)
    # Anthropic's list never shows them
    assert (await store.list_batches("a"))[0] == []


async def test_closed_batches_list_their_output_files_once(store: Store) -> None:
    made = batch()
    await store.create_openai_batch(made, custom_ids=["a", "b"], params=[LINE, LINE], quota=None)
    row = await store.get_openai_batch("a", made.id)
    assert row is not None and row.engine_seq is not None
    await store.cancel_batch("a", made.id, 1500.0)
    assert [r.id for r in await store.unclosed_openai_batches("a")] == [made.id]
    results = [page async for page in store.iter_openai_results(row.engine_seq)]
    assert [kind for page in results for _, kind, _ in page] == ["canceled", "canceled"]
    await store.close_openai_batch(made.id, Closing(2000.0, 0, 321, None, 9000.0))
    await store.close_openai_batch(made.id, Closing(2500.0, 7, 7, None, 9500.0))  # the first close wins
    assert await store.unclosed_openai_batches("a") == []
    closed = await store.get_openai_batch("a", made.id)
    assert closed is not None and (closed.closed_at, closed.output_bytes, closed.error_bytes) == (
        2000.0,
        0,
        321,
    )
    assert await store.get_openai_file("a", made.output_file_id, now=3000.0) is None  # no line: no file
    error = await store.get_openai_file("a", made.error_file_id, now=3000.0)
    assert error == OpenAIFile(
        made.error_file_id, "a", f"{made.id}_error.jsonl", "batch_output", 321, 2000.0, 9000.0
    )
    assert await store.get_openai_file("a", made.error_file_id, now=9000.0) is None  # expired
    found = await store.find_openai_output("a", made.error_file_id)
    assert found is not None and found.id == made.id
    listed = await store.list_openai_files(
        "a", now=3000.0, limit=9, after=None, ascending=False, purpose="batch_output"
    )
    assert listed == [error]
    assert await store.delete_openai_file("a", made.error_file_id)
    assert await store.get_openai_file("a", made.error_file_id, now=3000.0) is None
    assert not await store.delete_openai_file("a", made.error_file_id)


async def test_every_wire_lists_both_kinds_newest_first_and_anthropics_list_only_its_own(
    store: Store,
) -> None:
    made: list[str] = []
    for i in range(6):  # messages, openai, failed openai (no engine batch), messages, openai, openai
        if i % 3 == 0:
            made.append(
                (
                    await store.create_batch(
                        workspace="a", custom_ids=["c"], params=[b"{}"], now=1000.0 + i, expires_at=9e9
                    )
                ).id
            )
        else:
            b = batch(failed=i == 2, created=1000.0 + i)
            await store.create_openai_batch(
                b, custom_ids=[] if b.failed_at else ["a"], params=[] if b.failed_at else [LINE], quota=None
            )
            made.append(b.id)
    other = batch("b")
    await store.create_openai_batch(other, custom_ids=["a"], params=[LINE], quota=None)
    engine = [made[i] for i in (5, 4, 3, 1, 0)]  # newest first; the failed one has no engine batch
    every: list[str] = []
    page, more = await store.list_batches("a", limit=2, every_wire=True)
    every += [b.id for b in page]
    while more:
        page, more = await store.list_batches("a", after_id=page[-1].id, limit=2, every_wire=True)
        every += [b.id for b in page]
    assert every == engine
    page, more = await store.list_batches("a", before_id=made[1], limit=2, every_wire=True)
    assert [b.id for b in page] == [made[4], made[3]] and more
    assert [b.id for b in (await store.list_batches("a", limit=10))[0]] == [made[3], made[0]]
    assert [b.id for b in (await store.list_batches("b", limit=10, every_wire=True))[0]] == [other.id]

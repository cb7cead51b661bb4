"""Code-execution containers and the Files API's files, on each store: workspace scoping, expiry
moving only forward, sweeps, keyset pages in both directions, and claims that carry the workspace."""

from __future__ import annotations

from batchd.store import Store
from batchd.store.base import Container, StoredFile


def file(i: int, workspace: str = "a", created: float | None = None, expires: float = 1e12) -> StoredFile:
    made = created or 100.0 + i
    return StoredFile(
        f"file_{i:03}", workspace, "container_1", f"out{i}.csv", "text/csv", i, made, expires, i != 5
    )


async def test_containers_are_kept_touched_forward_and_expired(store: Store) -> None:
    await store.create_container(Container("container_1", "a", 10.0, 100.0))
    await store.create_container(Container("container_2", "b", 10.0, 50.0))
    assert await store.get_container("container_1") == Container("container_1", "a", 10.0, 100.0)
    assert await store.get_container("container_x") is None
    await store.touch_container("container_1", 200.0)
    await store.touch_container("container_1", 150.0)  # never earlier than it was
    found = await store.get_container("container_1")
    assert found is not None and found.expires_at == 200.0
    assert await store.live_containers(["container_1", "container_2", "container_x"], now=60.0) == {
        "container_1"
    }
    assert await store.expire_containers(now=60.0) == ["container_2"]
    assert await store.get_container("container_2") is None
    assert await store.expire_containers(now=60.0) == []
    assert await store.live_containers([], now=60.0) == set()


async def test_files_belong_to_their_workspace_and_expire(store: Store) -> None:
    await store.put_file(file(1), b"x,y\n1,2\n")
    await store.put_file(file(5, expires=float("inf")), b"an upload: never expires")
    assert await store.get_file("a", "file_005", now=1e15) == file(5, expires=float("inf"))
    assert (await store.get_file("a", "file_005", now=1e15)).downloadable is False  # type: ignore[union-attr]
    await store.put_file(file(2, "b"), b"other")
    await store.put_file(file(3, expires=150.0), b"short-lived")
    assert await store.get_file("a", "file_001", now=120.0) == file(1)
    assert await store.file_content("a", "file_001", now=120.0) == b"x,y\n1,2\n"
    assert await store.get_file("a", "file_002", now=120.0) is None  # another workspace's
    assert await store.file_content("a", "file_002", now=120.0) is None
    assert await store.get_file("a", "file_003", now=160.0) is None  # expired, not yet swept
    assert await store.expire_files(now=160.0) == 1
    assert await store.get_file("a", "file_003", now=120.0) is None
    assert not await store.delete_file("a", "file_002")
    assert await store.delete_file("b", "file_002")
    assert not await store.delete_file("b", "file_002")


async def test_files_page_newest_first_and_back(store: Store) -> None:
    for i in range(1, 8):
        await store.put_file(file(i, created=100.0 if i in (3, 4) else 100.0 + i), b"%d" % i)
    await store.put_file(file(99, "b"), b"elsewhere")
    first = await store.list_files("a", now=0.0, limit=3, after=None)
    assert [f.id for f in first] == ["file_007", "file_006", "file_005"]
    second = await store.list_files("a", now=0.0, limit=3, after=first[-1])
    # Two files made in the same second: ordered by id, neither skipped nor repeated.
    assert [f.id for f in second] == ["file_002", "file_001", "file_004"]
    third = await store.list_files("a", now=0.0, limit=3, after=second[-1])
    assert [f.id for f in third] == ["file_003"]
    back = await store.list_files("a", now=0.0, limit=2, after=third[0], backwards=True)
    assert [f.id for f in back] == ["file_004", "file_001"]


async def test_claims_carry_the_workspace(store: Store) -> None:
    await store.create_batch(workspace="team-a", custom_ids=["r"], params=[b"{}"], now=1.0, expires_at=1e12)
    (claimed,) = await store.claim_requests("w1", 10, now=2.0, lease=60.0)
    assert claimed.workspace == "team-a"

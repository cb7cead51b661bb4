"""Fair shares of a claim (store/shares.py): proportions over a window, rounding, short batches."""

from __future__ import annotations

from collections import Counter

from batchd.store import shares
from batchd.store.shares import OpenBatch, Shares


def run(state: Shares, batches: list[OpenBatch], limit: int, claims: int) -> Counter[int]:
    """What `claims` claims of `limit` take from each batch, every batch always having work."""
    total: Counter[int] = Counter()
    for _ in range(claims):
        asked = state.plan(batches, limit)
        assert sum(asked.values()) == limit
        state.took(asked, asked)
        total.update(asked)
    return total


def test_workspaces_share_equally_and_batches_split_their_workspaces_share() -> None:
    batches = [OpenBatch(1, "a"), OpenBatch(2, "a"), OpenBatch(3, "a"), OpenBatch(4, "b")]
    total = run(Shares(), batches, 64, 100)
    assert total[4] == 3200  # half of 6400
    assert total[1] + total[2] + total[3] == 3200
    assert max(total[s] for s in (1, 2, 3)) - min(total[s] for s in (1, 2, 3)) <= 1


def test_weights_scale_a_workspaces_share() -> None:
    total = run(Shares({"a": 3}), [OpenBatch(1, "a"), OpenBatch(2, "b")], 10, 100)
    assert (total[1], total[2]) == (750, 250)


def test_a_claim_smaller_than_the_batches_still_serves_each_in_turn() -> None:
    batches = [OpenBatch(seq, f"w{seq}") for seq in range(1, 101)]
    state = Shares()
    seen: Counter[int] = Counter()
    for _ in range(25):  # 25 claims of 4: each of the 100 batches once
        asked = state.plan(batches, 4)
        state.took(asked, asked)
        seen.update(asked)
    assert sorted(seen) == list(range(1, 101)) and set(seen.values()) == {1}


def test_a_new_batch_is_served_in_the_first_claim_after_it_opens() -> None:
    state = Shares()
    big = [OpenBatch(1, "a"), OpenBatch(2, "a")]
    run(state, big, 256, 50)
    asked = state.plan([*big, OpenBatch(3, "b")], 256)
    assert asked[3] == 128


def test_a_batch_short_of_work_banks_nothing_and_survivors_take_the_rest() -> None:
    state = Shares()
    batches = [OpenBatch(1, "a"), OpenBatch(2, "b")]
    asked = state.plan(batches, 10)
    got = {1: 2, 2: 5}  # batch 1 had 2 pending requests
    state.took(asked, got)
    left = shares.survivors(batches, asked, got)
    assert left == [OpenBatch(2, "b")]
    assert state.spread(left, 3) == {2: 3}
    assert state.plan(batches, 10) == {1: 5, 2: 5}  # batch 1 starts again from nothing


def test_apportion_sums_to_the_limit_whatever_the_credits() -> None:
    assert sum(shares.apportion({1: 5.5, 2: 7.9, 3: -0.5}, 10).values()) == 10
    assert sum(shares.apportion({1: 0.1, 2: 0.1}, 5).values()) == 5
    assert shares.apportion({1: 0.6, 2: 0.3, 3: 0.1}, 1) == {1: 1}

"""Fair claims: how many requests of one claim each open batch is asked for.

Every workspace with an open batch gets a share of each claim in proportion to its weight
(config/weights.py), split equally among its open batches; within a batch requests go in key order.
Shares are kept by deficit round robin: each claim credits every open batch its share of the claim
(`limit × share`, fractions included), asks it for the whole requests its credit holds, and debits
what it took. A small claim shared by many batches therefore still serves each in turn, and over a
window every batch with pending work gets its share. A batch that had fewer pending requests than
it was asked for starts again from nothing (it cannot bank what it did not use), and what it left
is spread over the batches that still have work (`spread`, not debited), so a claim comes back
short only when the store has no more pending work.

No state is shared between processes: in a PostgreSQL fleet each process keeps its own credits
over the same open batches and weights, so the fleet as a whole honours the same shares.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from batchd.config import weights as weight_rules


class OpenBatch(NamedTuple):
    """A batch whose pending requests may be claimed: `open_batches`."""

    seq: int
    workspace: str


def shares(batches: Sequence[OpenBatch], weights: Mapping[str, float]) -> dict[int, float]:
    """seq -> its fraction of a claim (they sum to 1): its workspace's weight over the weights of
    every workspace with an open batch, split equally among that workspace's batches."""
    per_workspace: dict[str, int] = {}
    for b in batches:
        per_workspace[b.workspace] = per_workspace.get(b.workspace, 0) + 1
    total = sum(weight_rules.weight(weights, w) for w in per_workspace)
    return {
        b.seq: weight_rules.weight(weights, b.workspace) / total / per_workspace[b.workspace] for b in batches
    }


def apportion(wanted: Mapping[int, float], limit: int) -> dict[int, int]:
    """Whole numbers that sum to `limit`, each as close to its `wanted` amount as rounding allows
    (largest remainder: the floors, then one more each in order of what the floor left out)."""
    ask = {seq: max(0, math.floor(w)) for seq, w in wanted.items()}
    order = sorted(wanted, key=lambda seq: wanted[seq] - ask[seq], reverse=True)
    diff = limit - sum(ask.values())
    while diff > 0 and order:
        for seq in order[:diff]:
            ask[seq] += 1
        diff = limit - sum(ask.values())
    while diff < 0:
        for seq in reversed(order):
            if diff < 0 and ask[seq] > 0:
                ask[seq] -= 1
                diff += 1
    return {seq: n for seq, n in ask.items() if n}


class Shares:
    """One process's fair-share state: the credit of every open batch, in requests."""

    def __init__(self, weights: Mapping[str, float] | None = None) -> None:
        self.weights = dict(weights or {})
        self._credit: dict[int, float] = {}

    def plan(self, batches: Sequence[OpenBatch], limit: int) -> dict[int, int]:
        """seq -> requests to ask of it in the first round of a claim of `limit`; they sum to `limit`."""
        if not batches or limit <= 0:
            return {}
        credit = {
            seq: self._credit.get(seq, 0.0) + limit * share
            for seq, share in shares(batches, self.weights).items()
        }
        self._credit = credit  # batches no longer open are forgotten
        return apportion(credit, limit)

    def took(self, asked: Mapping[int, int], got: Mapping[int, int]) -> None:
        """Debits what the first round took; a batch that came up short starts again from nothing."""
        for seq, n in asked.items():
            taken = got.get(seq, 0)
            self._credit[seq] = 0.0 if taken < n else self._credit.get(seq, 0.0) - taken

    def spread(self, batches: Sequence[OpenBatch], limit: int) -> dict[int, int]:
        """seq -> requests to ask of it in a later round: what earlier rounds left, by share, undebited."""
        if not batches or limit <= 0:
            return {}
        return apportion({seq: limit * s for seq, s in shares(batches, self.weights).items()}, limit)


def survivors(
    batches: Sequence[OpenBatch], asked: Mapping[int, int], got: Mapping[int, int]
) -> list[OpenBatch]:
    """The batches that may still have pending requests: all but those that gave less than asked."""
    return [b for b in batches if got.get(b.seq, 0) >= asked.get(b.seq, 0)]

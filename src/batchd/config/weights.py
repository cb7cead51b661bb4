"""Scheduling weights per workspace (`[weights]`): how much of the engine a workspace's batches share.

Every workspace with pending work gets a share of each claim in proportion to its weight (1 unless
its `[weights]` entry says otherwise), split equally among its open batches (store/shares.py). E.g.

    [weights]
    team-a = 2      # twice the throughput of any other busy workspace
    batch-jobs = 0.5
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import orjson

DEFAULT_WEIGHT = 1.0  # a workspace without an entry


def parse_weights(value: object) -> dict[str, float]:
    """The `[weights]` table from the file, or the same as a JSON object (BATCHD_WEIGHTS)."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value) if value.strip() else {}
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not a JSON object of weights: {exc}") from None
    if not isinstance(value, Mapping):
        raise ValueError("weights: expected a table of workspace = weight, e.g. [weights] team-a = 2")
    out: dict[str, float] = {}
    for workspace, weight in value.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float | str):
            raise ValueError(f"weights.{workspace}: not a number: {weight!r}")
        try:
            number = float(weight)
        except ValueError:
            raise ValueError(f"weights.{workspace}: not a number: {weight!r}") from None
        if not (number > 0 and math.isfinite(number)):
            raise ValueError(f"weights.{workspace}: must be a positive number")
        out[str(workspace)] = number
    return out


def weight(weights: Mapping[str, float], workspace: str) -> float:
    return weights.get(workspace, DEFAULT_WEIGHT)

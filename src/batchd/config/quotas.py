"""Quotas per workspace: the defaults (`quota_*` settings) and per-workspace overrides (`[quotas.NAME]`).

0 means unlimited. An override table names only what it changes, e.g.

    [quotas.team-a]
    queued_requests = 50000
    stored_bytes = "20GB"
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import orjson

from batchd.config import values

FIELDS = ("queued_requests", "batches", "stored_bytes")


@dataclasses.dataclass(frozen=True, slots=True)
class Quota:
    """The most a workspace may hold at once; 0 is no limit."""

    queued_requests: int = 0  #: requests pending or running, over all its batches
    batches: int = 0  #: batches in progress (not ended)
    stored_bytes: int = 0  #: bytes of the requests' params kept until deleted or archived

    @property
    def unlimited(self) -> bool:
        return not (self.queued_requests or self.batches or self.stored_bytes)


Overrides = Mapping[str, Mapping[str, int]]  # workspace -> the fields its table sets


def parse_overrides(value: object) -> dict[str, dict[str, int]]:
    """`[quotas.NAME]` tables from the file, or the same as a JSON object (BATCHD_QUOTAS)."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value) if value.strip() else {}
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not a JSON object of quotas: {exc}") from None
    if not isinstance(value, Mapping):
        raise ValueError("quotas: expected a table per workspace, e.g. [quotas.team-a]")
    out: dict[str, dict[str, int]] = {}
    for workspace, table in value.items():
        if not isinstance(table, Mapping):
            raise ValueError(f"quotas.{workspace}: expected a table of {', '.join(FIELDS)}")
        fields: dict[str, int] = {}
        for key, limit in table.items():
            if key not in FIELDS:
                raise ValueError(f"quotas.{workspace}: unknown quota {key!r} (known: {', '.join(FIELDS)})")
            number = values.parse_size(limit) if key == "stored_bytes" else _count(limit)
            if number < 0:
                raise ValueError(f"quotas.{workspace}.{key}: must be 0 (no limit) or more")
            fields[key] = number
        out[str(workspace)] = fields
    return out


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"not a whole number: {value!r}")
    return int(value)


def effective(default: Quota, overrides: Overrides, workspace: str) -> Quota:
    """The quota of `workspace`: the defaults, with what its override table sets."""
    found = overrides.get(workspace)
    return dataclasses.replace(default, **found) if found else default

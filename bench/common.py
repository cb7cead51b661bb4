"""What every benchmark scenario returns: rows of one Markdown table, figures next to what they are
compared with in the same run, and whether the issue's target was met. Also the helpers the scenarios
share: the standard request set, a server's memory, and rows for a scenario that could not run."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

PAD = "lorem ipsum dolor sit amet " * 32  # ~860 bytes, so params are ~1 KB


@dataclass(frozen=True)
class Row:
    scenario: str  # "create 100,000 requests (106 MB)"
    batchd: str  # "5.80 s, peak RSS 261 MB (2.5× body)"
    compared: str  # "limit 6.25 s" or "—"
    ratio: str  # "0.93×" or "—"
    target: str  # "≤ 1.5× limit; RSS ≤ 2× body"
    met: bool | None  # None: no target, or not measurable here

    def markdown(self) -> str:
        mark = {True: "✓", False: "✗", None: "—"}[self.met]
        cells = [self.scenario, self.batchd, self.compared, self.ratio, self.target, mark]
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Row:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


HEADER = "| scenario | batchd | compared with (same run) | ratio | target | met |\n|---|---|---|---|---|---|"


def table(rows: list[Row]) -> str:
    return "\n".join([HEADER, *(r.markdown() for r in rows)])


def missing(scenario: str, why: str, target: str = "—") -> Row:
    """The row of a scenario that did not produce figures: it could not run, or it failed."""
    return Row(scenario=scenario, batchd=why, compared="—", ratio="—", target=target, met=None)


def make_requests(n: int) -> list[dict[str, Any]]:
    """The standard batch: `n` requests of ~1 KB of params each (the simulator answers every one)."""
    return [
        {
            "custom_id": f"req-{i}",
            "params": {
                "model": "claude-sonnet-4-5-20250929",
                "max_tokens": 64,
                "system": "You are a terse benchmark assistant.",
                "messages": [{"role": "user", "content": f"Request {i}: {PAD}"}],
            },
        }
        for i in range(n)
    ]


def _status_bytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def vm_hwm(pid: int) -> int:
    """Peak resident set size of a live process since it started, bytes."""
    return _status_bytes(pid, "VmHWM")


def rss(pid: int) -> int:
    """Current resident set size of a live process, bytes."""
    return _status_bytes(pid, "VmRSS")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a live process has used, all its threads, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ratio(x: float, y: float) -> str:
    return f"{x / y:.2f}×" if y else "—"

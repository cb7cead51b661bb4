"""What every benchmark scenario returns: rows of one Markdown table, figures next to what they are
compared with in the same run, and whether the issue's target was met."""

from __future__ import annotations

from dataclasses import dataclass


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
        return f"| {self.scenario} | {self.batchd} | {self.compared} | {self.ratio} | {self.target} | {mark} |"


HEADER = (
    "| scenario | batchd | compared with (same run) | ratio | target | met |\n"
    "|---|---|---|---|---|---|"
)


def table(rows: list[Row]) -> str:
    return "\n".join([HEADER, *(r.markdown() for r in rows)])

"""Named SQL, read from `sql/<dialect>/queries.sql` in the `-- name: x` format."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@functools.cache
def load(dialect: str, name: str = "queries") -> Mapping[str, str]:
    """Every named statement of `dialect` in `sql/<dialect>/<name>.sql`, by name; read once and
    shared by the modules that use them."""
    text = resources.files("batchd.store").joinpath(f"sql/{dialect}/{name}.sql").read_text()
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [ln for ln in body.strip().splitlines() if not ln.lstrip().startswith("--")]
        queries[name] = "\n".join(lines).strip().rstrip(";")
    return queries


def migrations(dialect: str) -> list[tuple[int, str]]:
    """(version, script) for every `NNNN_name.sql` migration, in order."""
    folder = resources.files("batchd.store").joinpath(f"sql/{dialect}")
    found = []
    for entry in folder.iterdir():
        match = re.match(r"^(\d{4})_\w+\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text()))
    return sorted(found)

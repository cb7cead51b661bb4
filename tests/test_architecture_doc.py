"""docs/architecture.md names real files and real tests, so the page cannot drift from the tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "src" / "batchd"
DOC = ROOT / "docs" / "architecture.md"

# Names the page gives to what does not exist yet ("How to add ...").
NOT_YET = {"api/openai/", "tools/web_search/", "NNNN_name.sql"}

SPAN = re.compile(r"`([^`\s]+)`")
PATH = re.compile(r"^[\w.][\w./-]*(\.(py|sql|md|toml)|/)$")  # a file or a folder/
TEST_ID = re.compile(r"^(?P<file>[\w./-]+\.py)?::(?P<test>test_\w+)$")


def _exists(name: str) -> bool:
    if (ROOT / name).exists() or (PACKAGE / name).exists():
        return True
    # A bare name (`store.py`, `sqlite/`) is one in the folder the sentence is about.
    bare = name.rstrip("/")
    return "/" not in bare and any([*ROOT.glob(f"src/**/{bare}"), *ROOT.glob(f"tests/**/{bare}")])


def _test_module(name: str) -> Path | None:
    """`tests/a/test_x.py`, or a bare `test_x.py` found anywhere under tests/."""
    if "/" in name:
        return ROOT / name if (ROOT / name).is_file() else None
    return next(iter(ROOT.glob(f"tests/**/{name}")), None)


def _defines(test_file: Path, test: str) -> bool:
    return re.search(rf"^(async )?def {test}\(", test_file.read_text(), re.M) is not None


def test_every_file_and_test_named_exists() -> None:
    missing: list[str] = []
    for number, line in enumerate(DOC.read_text().splitlines(), 1):
        test_file: Path | None = None  # the last test module named on this line
        for span in SPAN.findall(line):
            found = TEST_ID.match(span)
            if found:
                if found["file"]:
                    test_file = _test_module(found["file"])
                if test_file is None or not _defines(test_file, found["test"]):
                    missing.append(f"line {number}: {span}")
            elif PATH.match(span) and span not in NOT_YET:
                if not _exists(span):
                    missing.append(f"line {number}: {span}")
                elif Path(span).name.startswith("test_"):
                    test_file = _test_module(span)
    assert not missing, "docs/architecture.md names what does not exist:\n" + "\n".join(missing)

"""The create and end-to-end scenario at several sizes (the older entry point; `python -m bench` runs
every scenario and writes docs/benchmarks.md).

    python bench/run.py                 # 10,000 and 100,000 requests
    python bench/run.py --sizes 10000   # quick
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import create_e2e
from bench.common import make_requests, rss, table, vm_hwm  # noqa: F401 - kept importable from here


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000")
    args = parser.parse_args()
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        rows.extend(create_e2e.run(n))
    print(table(rows))


if __name__ == "__main__":
    main()

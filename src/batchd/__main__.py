from __future__ import annotations

from batchd.cli import main

main()

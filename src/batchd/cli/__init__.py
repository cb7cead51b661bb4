"""The `batchd` command: the server commands (serve, worker) and the user's client (submit, ls, …).

commands.py holds the click group; server.py and worker.py run the processes; client.py and
progress.py are the client commands and their live display. Their input files are checked and split
by params/jsonl.py, which the dashboard's upload shares.
"""

from __future__ import annotations

from batchd.cli.commands import main

__all__ = ["main"]

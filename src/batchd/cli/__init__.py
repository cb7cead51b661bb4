"""The `batchd` command: the server commands (serve, worker) and the user's client (submit, ls, …).

commands.py holds the click group; server.py and worker.py run the processes; client.py,
inputs.py and progress.py are the client commands, their input files and their live display.
"""

from __future__ import annotations

from batchd.cli.commands import main

__all__ = ["main"]

"""SIGUSR1 on `batchd serve` or `batchd worker`: log where every asyncio task is waiting.

For a process that seems stuck: `kill -USR1 <pid>`, then read its log.
"""

from __future__ import annotations

import asyncio
import io
import logging
import signal

logger = logging.getLogger("batchd")


def dump_tasks() -> None:
    for task in asyncio.all_tasks():
        out = io.StringIO()
        task.print_stack(limit=8, file=out)
        logger.warning("task %s:\n%s", task.get_name(), out.getvalue())


def install() -> None:
    """Installs the SIGUSR1 handler on the running loop."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)

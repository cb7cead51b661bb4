"""The server-tool loop: `ToolLoop` wraps a backend and runs web search and web fetch for it."""

from __future__ import annotations

from batchd.tools.loop.backend import ToolLoop, needs_loop
from batchd.tools.loop.blocks import server_tool_id
from batchd.tools.loop.calls import FetchedDocument, Fetcher

__all__ = ["FetchedDocument", "Fetcher", "ToolLoop", "needs_loop", "server_tool_id"]

"""The engine: claims pending requests, runs them on backends, records exactly one result each."""

from __future__ import annotations

from batchd.engine.dispatcher import Dispatcher

__all__ = ["Dispatcher"]

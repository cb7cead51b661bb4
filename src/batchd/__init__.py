"""batchd: a self-hosted Anthropic Message Batches API server for your own models."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]

"""OpenAI-compatible chat completions upstreams: Messages params translated to a chat request
(request.py) and the chat completion translated back to a Message (response.py)."""

from __future__ import annotations

from batchd.backends.openai.backend import OpenAIBackend

__all__ = ["OpenAIBackend"]

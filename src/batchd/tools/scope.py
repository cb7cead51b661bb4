"""Whose request a server tool runs for: the workspace, set by the engine (a batch request) and the
Messages API (a realtime call) around each `create_message`.

Code-execution containers and the files their programs write belong to a workspace: a request may
reuse only its own workspace's containers, and only that workspace can download the files.
"""

from __future__ import annotations

import contextvars

DEFAULT = "default"  #: the workspace every caller shares when no API keys are configured

workspace: contextvars.ContextVar[str] = contextvars.ContextVar("batchd_workspace", default=DEFAULT)

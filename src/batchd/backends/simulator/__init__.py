"""The built-in simulator: deterministic Messages answers of every result type, no model needed.

backend.py holds `SimulatedBackend` and documents what it answers; message.py builds the
Message; input.py reads the prompt, text.py writes English-like text, blocks.py the content
blocks, schema.py tool inputs that satisfy a JSON schema, directives.py the `@sim:` words.
"""

from __future__ import annotations

from batchd.backends.simulator.backend import SimulatedBackend

__all__ = ["SimulatedBackend"]

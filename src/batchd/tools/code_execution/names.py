"""The code-execution tool's versions and the functions the model calls (server-tools.md §4)."""

from __future__ import annotations

CODE = "code_execution"  #: the tool's name; also its Python function's (`{"code"}`)
BASH = "bash_code_execution"  #: `{"command"}`
EDITOR = "text_editor_code_execution"  #: `{"command": "view" | "create" | "str_replace", "path", ...}`
FUNCTIONS = frozenset({CODE, BASH, EDITOR})
LEGACY = "code_execution_20250522"  #: Python only, each program in a fresh process
REPL_VERSIONS = frozenset({"code_execution_20260120", "code_execution_20260521"})  #: Python in a REPL
VERSIONS = frozenset({LEGACY, "code_execution_20250825", *REPL_VERSIONS})

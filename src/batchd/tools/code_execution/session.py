"""The code-execution calls of one request: one container, found or made at the first call.

`run` answers one call with its result block's `content` (server-tools.md §4.2) and the text the
model reads. What the spec says becomes an error object raises ToolError with its code:
`invalid_tool_input` (a malformed input), `unavailable` (no sandbox here),
`execution_time_exceeded` (a bash command or a `_20250522` program past the wall limit),
`output_file_too_large` (bash). A REPL cell past the limit is a normal result with a non-zero
return code and stderr saying so, as Anthropic's `_20260521` answers; the REPL starts anew.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from batchd import exceptions
from batchd.metrics import Metrics
from batchd.tools.code_execution import render
from batchd.tools.code_execution.containers import Containers, Live, OutputFile, TooLarge
from batchd.tools.code_execution.names import BASH, CODE, EDITOR
from batchd.tools.code_execution.sandbox import Execution, SandboxError
from batchd.tools.errors import ToolError

logger = logging.getLogger("batchd.tools")

EDITOR_COMMANDS = {
    "view": {"path": str},
    "create": {"path": str, "file_text": str},
    "str_replace": {"path": str, "old_str": str, "new_str": str},
}


class CodeSession:
    """`requested`: the request's `container` param (an id), checked by `start`; `repl`: the
    tool's version keeps Python in a REPL (`_20260120` and later)."""

    def __init__(
        self,
        containers: Containers,
        workspace: str,
        requested: str | None,
        *,
        repl: bool,
        metrics: Metrics | None = None,
    ) -> None:
        self.containers, self.workspace, self.requested = containers, workspace, requested
        self.repl, self.metrics = repl, metrics
        self.live: Live | None = None
        self._held: Any = None  # the `using` context of `live`

    async def start(self) -> None:
        """Checks the requested container (InvalidParams: unknown, another workspace's, expired)."""
        if self.requested is not None:
            row = await self.containers.find(self.workspace, self.requested)
            if await self.containers.available() is None:
                await self._hold(await self.containers.attach(row))

    async def _hold(self, live: Live) -> None:
        self.live = live
        self._held = self.containers.using(live)
        await self._held.__aenter__()

    def container(self) -> dict[str, Any] | None:
        """The message's `container` ({id, expires_at}), once the request has one."""
        if self.live is None:
            return None
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.live.expires_at))
        return {"id": self.live.id, "expires_at": stamp}

    async def finish(self) -> None:
        """The request is done with its container: its idle time starts now."""
        if self.live is not None and self._held is not None:
            try:
                await self.containers.touch(self.live)
            finally:
                held, self._held = self._held, None
                await held.__aexit__(None, None, None)

    async def run(self, call: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        """(result content, text for the model) of one call; ToolError for an error object."""
        name, tool_input = call["name"], call.get("input")
        if not isinstance(tool_input, dict):
            raise ToolError("invalid_tool_input", "the input must be an object")
        checked = _checked(name, tool_input)
        live = await self._container()
        started = time.monotonic()
        outcome = "ok"
        try:
            async with self.containers.turn(live):
                if name == EDITOR:
                    content = await self.containers.edit(live, checked)
                    outcome = str(content.get("error_code") or "ok")
                    return content, render.result(content)
                await self.containers.clear_outputs(live)
                execution = await self._execute(live, name, checked)
                outcome = _outcome(execution)
                if execution.timed_out and not self._repl(name):
                    raise ToolError("execution_time_exceeded", "the program ran past the wall-clock limit")
                try:
                    files = await self.containers.keep_outputs(live)
                except TooLarge as exc:
                    if name == BASH:
                        outcome = "output_file_too_large"
                        raise ToolError("output_file_too_large", str(exc)) from exc
                    execution = _with_note(execution, f"{exc}: not kept")
                    files = []
                content = _run_result(name, execution, files)
                return content, render.result(content, {f.id: f.filename for f in files})
        except SandboxError as exc:
            outcome = "unavailable"
            logger.warning("code execution failed to start: %s", exc)
            raise ToolError("unavailable", str(exc)) from exc
        except ToolError as exc:
            outcome = exc.error_code
            raise
        finally:
            if self.metrics is not None:
                self.metrics.execution(name, outcome, time.monotonic() - started)

    async def _container(self) -> Live:
        """The request's container, made now if it has none; ToolError unavailable without a sandbox."""
        why = await self.containers.available()
        if why is not None:
            raise ToolError("unavailable", why)
        if self.live is None:
            try:
                await self._hold(await self.containers.create(self.workspace))
            except SandboxError as exc:
                raise ToolError("unavailable", str(exc)) from exc
        assert self.live is not None
        return self.live

    async def upload(self, file_ids: Sequence[str]) -> dict[str, str]:
        """Puts the files of the request's `container_upload` blocks in its container: the text the
        model reads in place of each block, by file id. InvalidParams for a file the workspace
        does not have."""
        store = self.containers.store
        assert store is not None
        said: dict[str, str] = {}
        for file_id in dict.fromkeys(file_ids):
            found = await store.get_file(self.workspace, file_id, now=time.time())
            content = await store.file_content(self.workspace, file_id, now=time.time())
            if found is None or content is None:
                raise exceptions.InvalidParams(f"container_upload: no file {file_id!r} in this workspace")
            try:
                live = await self._container()
                async with self.containers.turn(live):
                    placed = await self.containers.place(live, found.filename, content)
            except (ToolError, SandboxError) as exc:
                logger.warning("container_upload of %s failed: %s", file_id, exc)
                placed = False
            where = f"{found.filename} ({found.size_bytes} bytes)"
            said[file_id] = (
                f"[The user uploaded the file {where} to the working directory of the code execution "
                "sandbox.]"
                if placed
                else f"[The user uploaded the file {where}, but it could not be placed in the sandbox.]"
            )
        return said

    def _repl(self, name: str) -> bool:
        return name == CODE and self.repl

    async def _execute(self, live: Live, name: str, checked: Mapping[str, Any]) -> Execution:
        sandbox = self.containers.sandbox
        assert sandbox is not None
        if name == BASH:
            return await sandbox.run(live.home, ["bash", "-c", checked["command"]])
        if self._repl(name):
            repl = await self.containers.repl(live)
            return await repl.run_cell(checked["code"])
        return await sandbox.run(live.home, ["python3", "-"], stdin=checked["code"].encode())


def _checked(name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    """The call's input, checked against its function's schema (ToolError invalid_tool_input)."""
    if name == BASH:
        wanted = {"command": str}
    elif name == CODE:
        wanted = {"code": str}
    else:
        command = tool_input.get("command")
        if command not in EDITOR_COMMANDS:
            raise ToolError("invalid_tool_input", f"command must be one of {', '.join(EDITOR_COMMANDS)}")
        wanted = {"command": str, **EDITOR_COMMANDS[command]}
        view_range = tool_input.get("view_range")
        if (
            command == "view"
            and view_range is not None
            and not (
                isinstance(view_range, list)
                and len(view_range) == 2
                and all(type(n) is int for n in view_range)
            )
        ):
            raise ToolError("invalid_tool_input", "view_range must be two integers [first, last]")
    for key, kind in wanted.items():
        if not isinstance(tool_input.get(key), kind):
            raise ToolError("invalid_tool_input", f"{key} must be a string")
    return tool_input


def _outcome(execution: Execution) -> str:
    if execution.timed_out:
        return "timeout"
    return "ok" if execution.return_code == 0 else "nonzero_exit"


def _with_note(execution: Execution, note: str) -> Execution:
    stderr = execution.stderr + ("" if not execution.stderr or execution.stderr.endswith("\n") else "\n")
    return Execution(execution.stdout, f"{stderr}{note}\n", execution.return_code, execution.timed_out,
                     execution.truncated)  # fmt: skip


def _run_result(name: str, execution: Execution, files: list[OutputFile]) -> dict[str, Any]:
    prefix = "bash_code_execution" if name == BASH else "code_execution"
    return {
        "type": f"{prefix}_result",
        "stdout": execution.stdout,
        "stderr": execution.stderr,
        "return_code": execution.return_code,
        "content": [{"type": f"{prefix}_output", "file_id": f.id} for f in files],
    }

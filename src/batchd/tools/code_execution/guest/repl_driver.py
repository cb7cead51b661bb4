"""The REPL's driver: runs cells in one namespace, inside the sandbox, under its own Python.

Not imported by batchd: batchd passes this file's text to `python3 -I -u -B -c`. Arguments: the
nonce of the start-up marker and the CPU seconds allowed per cell. Each line batchd sends on
stdin is a JSON object `{"nonce": str, "code": str}`; the cell runs with stdout and stderr
being the process's own (so output of subprocesses is the cell's too), then the driver writes
the end marker `\\0\\x1ebatchd-cell:<nonce>:<return code, 12 characters>\\n` on both. The cell's
stdin is /dev/null. A cell's last expression, when not None, is printed as in an interactive
session. An exception prints its traceback on stderr (return code 1); SystemExit(n) returns n.
"""

from __future__ import annotations

import ast
import builtins
import json
import linecache
import math
import os
import resource
import sys
import traceback
import types


def marker(nonce: str, code: int) -> bytes:
    return f"\0\x1ebatchd-cell:{nonce}:{code:+012d}\n".encode()


def limit_cpu(seconds: float) -> None:
    """Allow `seconds` more of CPU time from now: the kernel's SIGXCPU then ends the process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + seconds)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def run_cell(code: str, namespace: dict[str, object], name: str) -> int:
    try:
        tree = ast.parse(code, name, "exec")
    except (SyntaxError, ValueError) as exc:
        traceback.print_exception(type(exc), exc, None)
        return 1
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body[-1].value)
        del tree.body[-1]
    try:
        exec(compile(tree, name, "exec"), namespace)
        if last is not None:
            value = eval(compile(last, name, "eval"), namespace)
            if value is not None:
                namespace["_"] = value
                print(repr(value))
    except SystemExit as exc:
        return exit_code(exc)
    except BaseException as exc:
        # The traceback starts at the cell: this function's frame is left out.
        tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        traceback.print_exception(type(exc), exc, tb)
        return 1
    return 0


def flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # a cell may have closed or replaced them
            pass


def main() -> None:
    nonce, cpu = sys.argv[1], float(sys.argv[2])
    control = os.fdopen(os.dup(0), "rb")  # os.dup: not inherited by the cells' subprocesses
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # What `python3` started in /workspace would have; -I left out the working directory and PYTHONPATH.
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[0:0] = ["", *extra]
    driver = sys.modules["__main__"]  # kept: this module's functions use its globals
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = module
    namespace = module.__dict__
    os.write(1, marker(nonce, 0))
    os.write(2, marker(nonce, 0))
    for cell, line in enumerate(control, start=1):
        request = json.loads(line)
        limit_cpu(cpu)
        code = run_cell(request["code"], namespace, f"<cell {cell}>")
        flush()
        os.write(1, marker(request["nonce"], code))
        os.write(2, marker(request["nonce"], code))
    del driver


main()

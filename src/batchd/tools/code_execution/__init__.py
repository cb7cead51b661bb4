"""Code execution: programs run in a bubblewrap sandbox over a container's home directory.

`sandbox.Sandbox` starts programs (`run`), persistent Python REPLs (`start_repl`, `repl.py`) and
the text editor (`edit`, `editor.py`) in a sandbox with no network, a read-only system image and
only the container's work, outputs and tmp directories writable; `homes.py` keeps those
directories, `bwrap.py` builds the sandbox's command line, `limits.py` the resource limits,
`seccomp.py` the system call filter, and `execution.py` reads a program's output within them.
The scripts in `guest/` run inside the sandbox (under its Python, never imported by batchd).

Above the sandbox: `containers.py` keeps containers per workspace (a row in the store, a home here,
a REPL while used) and the files their programs leave; `session.py` runs the code-execution calls of
one request; `render.py` is what the model reads back; `names.py` the tool's versions and functions.
"""

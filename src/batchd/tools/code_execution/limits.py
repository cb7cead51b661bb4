"""What one sandboxed program may use: CPU, wall time, memory, processes, files, output.

The kernel enforces all but the wall clock and the output cap, as rlimits that `prlimit` sets
inside the sandbox just before the program starts. They are set there, after bubblewrap made the
user namespace, because the kernel counts RLIMIT_NPROC per user namespace and uid: a limit set
before would count the processes of every sandbox running as the same uid together.
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Limits:
    cpu_seconds: float = 30.0  # RLIMIT_CPU per program (per cell for the REPL)
    wall_seconds: float = 90.0  # wall clock per program / cell; then the whole tree is killed
    memory_bytes: int = 1 << 30  # RLIMIT_AS per process
    processes: int = 64  # processes/threads the sandbox may hold at once
    open_files: int = 256  # RLIMIT_NOFILE
    file_size_bytes: int = 100 << 20  # RLIMIT_FSIZE
    output_bytes: int = 1 << 20  # each of stdout and stderr kept; the rest is read and dropped
    shm_bytes: int = 64 << 20  # the size of /dev/shm, a tmpfs (memory) of the sandbox's own

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not value > 0:
                raise ValueError(f"Limits.{field.name} must be positive, not {value!r}")

    def prlimit(self, prlimit: str, *, cpu: bool = True) -> list[str]:
        """The `prlimit … --` prefix that applies these limits to the command after it.

        `cpu=False` leaves RLIMIT_CPU unlimited: the REPL sets it per cell itself.
        """
        args = [
            prlimit,
            f"--as={self.memory_bytes}",
            f"--nproc={self.processes}",
            f"--nofile={self.open_files}",
            f"--fsize={self.file_size_bytes}",
            "--core=0",
        ]
        if cpu:
            # SIGXCPU at the soft limit (it kills unless caught), SIGKILL a second later.
            soft = math.ceil(self.cpu_seconds)
            args.append(f"--cpu={soft}:{soft + 1}")
        return [*args, "--"]

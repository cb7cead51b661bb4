"""A finished program as the tools report it, and the capped reading of its output.

Output is read as fast as the program writes it, whatever its size: the first `output_bytes`
of each stream are kept and the rest is read and dropped, so a program printing 100 MB never
blocks on a full pipe and costs batchd no more than the cap.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses

CHUNK = 256 << 10  # bytes read from a pipe at a time
WALL_KILL_RETURN_CODE = 137  # 128 + SIGKILL: what a program stopped at the wall-clock limit returns


@dataclasses.dataclass(frozen=True)
class Execution:
    """What a program did.

    `return_code` is the program's exit code; killed by signal N it is 128 + N (so a program
    stopped at the wall-clock limit returns 137, SIGKILL), as a shell reports it.
    """

    stdout: str  # decoded utf-8 with errors="replace"; when truncated ends with a line saying so
    stderr: str  # likewise; a wall-time kill appends a line saying the program was stopped after N s
    return_code: int
    timed_out: bool  # the wall limit stopped it
    truncated: bool  # stdout or stderr was cut at output_bytes


class Capture:
    """One output stream: the first `cap` bytes kept, the total counted."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.kept = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.cap - len(self.kept)
        if room > 0:
            self.kept += data[:room]

    @property
    def truncated(self) -> bool:
        return self.total > self.cap

    def text(self, *notes: str) -> str:
        """The kept bytes as text, then a line for the truncation (if any) and each note."""
        if self.truncated:
            # Cut at a character boundary: an incomplete UTF-8 sequence at the cut is left out.
            text = codecs.getincrementaldecoder("utf-8")("replace").decode(bytes(self.kept), final=False)
            notes = (
                f"[output truncated: the program wrote {self.total:,} bytes here; the first "
                f"{self.cap:,} are kept]",
                *notes,
            )
        else:
            text = self.kept.decode("utf-8", "replace")
        for note in notes:
            if text and not text.endswith("\n"):
                text += "\n"
            text += note + "\n"
        return text


async def drain(reader: asyncio.StreamReader, capture: Capture) -> None:
    """Read `reader` to its end into `capture`."""
    while data := await reader.read(CHUNK):
        capture.feed(data)


async def feed_stdin(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write `data` to the program's stdin and close it; a program that does not read it is fine."""
    try:
        writer.write(data)
        await writer.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await writer.wait_closed()


def return_code(status: int) -> int:
    """A process's exit status as a shell reports it: killed by signal N is 128 + N."""
    return 128 - status if status < 0 else status


def stopped_note(wall_seconds: float, what: str = "the program", then: str = "") -> str:
    return f"[{what} was stopped after {wall_seconds:g} s: the wall-clock limit{then}]"

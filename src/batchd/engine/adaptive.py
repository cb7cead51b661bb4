"""Adaptive concurrency: how many batch calls a route lets in at once, learnt from its upstream.

A route's `concurrency` is what its upstream accepts at most; how many calls it takes before each
one gets slower is another number, and it moves (other tenants, longer prompts, a GPU shared). So
batch work follows a limit of its own (`AdaptiveLimit.limit`, between `adaptive_min_concurrency`
and `concurrency`) set by what the batch calls themselves show, a gradient on latency with a
multiplicative cut on overload (Envoy's adaptive-concurrency filter and Netflix's Vegas/Gradient
limits do the same; see docs/backends.md):

- **baseline**: the median latency of a window of batch calls run at the floor (the limit starts
  there): what a call costs the upstream with next to nothing else in flight. A window at the
  floor later, or one faster than the baseline, replaces it, so the baseline follows an upstream
  that got slower or faster for good.
- **gradient**: every window of max(WINDOW, limit) batch calls started since the last change, the
  limit is multiplied by `tolerance × baseline / median` (bounded to [0.5, 2]): it grows while calls
  take less than `tolerance` times the baseline (and the limit was reached: a limit that nothing
  presses against does not grow), and shrinks when they take more, so the upstream runs as many
  batch calls as it can without their latency passing `tolerance` × its idle latency.
- **overload**: a 429, 503, 529 or 504 answer, or a call timing out, halves the limit at once. Only
  a call started after the limit last changed can change it again, so one overload's burst of
  failures counts once.

What the gradient protects is realtime latency (`adaptive_latency = "realtime"`, the default): it
applies while the route has seen a realtime call within DEMAND seconds. The first realtime call after
a quiet spell sends the limit back to the floor to learn the baseline afresh; with no realtime call
to protect, batch work takes the whole route (the limit doubles each pressed window up to
`concurrency`; only overload cuts it), so a batch-only server keeps every slot it is given.
`adaptive_latency = "always"` applies the gradient to batch work alone too (an upstream shared with
other clients batchd does not see).

Realtime calls are never held back by this limit: a route's slots admit one whenever any of its
`concurrency` is free. They count against it (batch work leaves them room inside it, see
engine/admission.py), so a realtime call arriving meets an upstream loaded to the limit, not beyond;
their overload answers cut it, but their latency is not sampled (their sizes are not the batch's).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import AsyncIterator, Callable

from batchd import exceptions

WINDOW = 8  # batch calls, at least, behind each change of the limit
DEMAND = 30.0  # seconds a realtime call keeps the latency gradient on (adaptive_latency = "realtime")
LATENCY_GUARDS = ("realtime", "always")  # when the latency gradient applies
GRADIENT = (0.5, 2.0)  # the most one window may shrink or grow the limit by
OVERLOAD_STATUSES = frozenset({429, 503, 504, 529})  # the upstream is past its capacity


class AdaptiveLimit:
    """The batch calls in flight a route allows now: between `floor` and `ceiling`."""

    def __init__(
        self,
        ceiling: int,
        *,
        floor: int = 1,
        tolerance: float = 1.5,
        latency: str = "always",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ceiling = max(1, ceiling)
        self.floor = max(1, min(floor, self.ceiling))
        self.tolerance = tolerance
        self.always = latency == "always"  #: the gradient applies without realtime demand too
        self.clock = clock
        self._realtime_at = -DEMAND - 1.0  # clock of the last realtime call admitted
        #: batch calls allowed in flight now: a guarded route learns up from the floor
        self.limit = self.floor if self.always else self.ceiling
        self.baseline: float | None = None  #: seconds a batch call takes at the floor
        self.cuts = 0  #: times an overload answer cut the limit
        self._changed_at = clock()  # calls started before take no part in the next change
        self._samples: list[float] = []
        self._pressed = False  # some call of the window ran with the limit reached

    def now(self) -> float:
        return self.clock()

    @property
    def guarding(self) -> bool:
        """Whether batch calls' latency bounds the limit now (see the module's docstring)."""
        return self.always or self.clock() - self._realtime_at <= DEMAND

    def realtime(self) -> None:
        """A realtime call was admitted. After a quiet spell, the limit goes back to the floor,
        where the baseline is learnt again: from now on batch work yields latency to it."""
        if not self.guarding:
            self.baseline = None
            self._set(self.floor)
        self._realtime_at = self.clock()

    def succeeded(self, started: float, seconds: float, pressed: bool) -> None:
        """A batch call started at `started` answered in `seconds`; `pressed`: batch work had every
        slot the limit gives it then."""
        if started < self._changed_at:
            return
        self._samples.append(seconds)
        self._pressed = self._pressed or pressed
        if len(self._samples) < max(WINDOW, self.limit):
            return
        if not self.guarding:  # no realtime call to protect: batch work takes the route
            self._set(min(self.ceiling, self.limit * 2) if self._pressed else self.limit)
            return
        sample = max(statistics.median(self._samples), 1e-6)
        if self.baseline is None or self.limit == self.floor or sample < self.baseline:
            self.baseline = sample
        gradient = min(max(self.tolerance * self.baseline / sample, GRADIENT[0]), GRADIENT[1])
        if gradient > 1:
            grown = max(self.limit + 1, int(self.limit * gradient)) if self._pressed else self.limit
            self._set(min(self.ceiling, grown))
        elif gradient < 1:
            self._set(max(self.floor, min(self.limit - 1, int(self.limit * gradient))))
        else:
            self._set(self.limit)

    def overloaded(self, started: float) -> None:
        """A call started at `started` met an overloaded upstream (429, 503, 529, 504, timeout)."""
        if started < self._changed_at:
            return  # the limit already changed since it started: this overload is counted
        self.cuts += 1
        self._set(max(self.floor, self.limit // 2))

    def _set(self, limit: int) -> None:
        self.limit = limit
        self._changed_at = self.clock()
        self._samples.clear()
        self._pressed = False


def overload(exc: BaseException) -> bool:
    """Whether a call's failure says the upstream is past its capacity."""
    if isinstance(exc, TimeoutError):
        return True
    return isinstance(exc, exceptions.BackendError) and exc.status in OVERLOAD_STATUSES


def batch_cap(slots: int, kept: int, adaptive: AdaptiveLimit | None) -> int:
    """Batch calls a route's slots let run at once: its slots, or its adaptive limit when lower,
    less the room kept for realtime calls (one at least)."""
    ceiling = slots if adaptive is None else min(slots, adaptive.limit)
    return max(1, ceiling - kept)


@contextlib.asynccontextmanager
async def measured(
    adaptive: AdaptiveLimit,
    held: contextlib.AbstractAsyncContextManager[None],
    pressed: Callable[[], bool],
    *,
    realtime: bool,
) -> AsyncIterator[None]:
    """`held` (a route's admission), telling `adaptive` how the call inside it went before the
    slot is given back (so the slot goes out under the new limit)."""
    if realtime:
        adaptive.realtime()
    async with held:
        started = adaptive.now()
        try:
            yield
        except BaseException as exc:
            if overload(exc):
                adaptive.overloaded(started)
            raise
        if not realtime:
            adaptive.succeeded(started, adaptive.now() - started, pressed())

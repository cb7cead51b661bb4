"""The dispatcher: claim-after-capacity, one task per request, group-committed results, leases.

Capacity is reserved before claiming (a claim never exceeds free slots), so no request sits
leased without being worked on. Results are collected and written in group commits by one
writer task; the store records only the first result of a request, so a request re-run after a
crash can never get two. In a PostgreSQL fleet the dispatcher also keeps its worker's liveness lock
(engine/liveness.py): it claims only while the lock is confirmed, and gives up the requests in hand
when it has not been for half of `takeover_after`, before any other process may take them over.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterable
from typing import Any

from batchd import exceptions, models, params
from batchd.backends.base import Backend
from batchd.config import Settings
from batchd.engine import liveness, loops, openai_lines, outcomes, prefix, retry, sweeps, webhooks
from batchd.engine.router import Route, Router
from batchd.metrics import Metrics
from batchd.store import Store
from batchd.tools import scope

logger = logging.getLogger("batchd.engine")

IDLE_POLL = 0.5  # seconds between claims when nothing wakes the dispatcher
FLUSH_MAX = 2048  # results per commit
START_SLICE = 64  # claimed requests started between two turns of the event loop
STOP_GRACE = 5.0  # seconds in-flight requests get to finish on shutdown
STOP_FLUSH = 20.0  # seconds shutdown keeps trying to write results to an unavailable store


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        router: Router,
        metrics: Metrics | None = None,
        *,
        webhooks: webhooks.Sender | None = None,
    ) -> None:
        self.settings = settings
        self.webhooks = webhooks  # delivers the webhook outbox (issue 17); None: not this process
        self.metrics = metrics or Metrics()
        self.store = store
        self.router = router
        self._lines = openai_lines.Lines(settings)  # a `batch_…` batch's requests: OpenAI lines
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{models.new_request_id()[4:12]}"
        self._wake = asyncio.Event()  # news of work: claim now
        self._capacity = asyncio.Event()  # a running request finished
        self._results: list[models.Outcome] = []
        self._have_results = asyncio.Event()
        # The last claim came back short: no claim is made until news of work or the next poll.
        # With nothing queued or running besides, the engine is `_dry`.
        self._drained = False
        self._dried = asyncio.Event()  # set as the engine turns dry: the writer waits no longer
        self._inflight: set[asyncio.Task[None]] = set()
        self._queue: collections.deque[models.ClaimedRequest] = collections.deque()  # claimed, not started
        self._deadlines: dict[asyncio.Task[Any], float] = {}  # monotonic deadline of each backend call
        self._timed_out: set[asyncio.Task[Any]] = set()
        # Keys of the requests this process holds (running, or result not yet written): the
        # heartbeat renews exactly these leases.
        self._held: set[int] = set()
        self._loops: loops.Loops | None = None
        self._stopping = False
        # PostgreSQL: fleet-wide slots for routes with a fleet_concurrency (one SQLite process needs none)
        self._acquire_slot = None if (slots := store.fleet_slots) is None else slots.acquire
        self._release_slot = None if slots is None else slots.release
        # PostgreSQL: the lock that proves this worker alive to the fleet (one SQLite process needs none)
        self._liveness = None
        if (lock := store.worker_lock) is not None:
            self._liveness = liveness.Liveness(
                lock,
                self.worker_id,
                takeover_after=settings.takeover_after,
                abandon=self._abandon,
                renew=self._renew,
            )
        self.metrics.watch_engine(lambda: self.claimed, lambda: len(self._deadlines))

    def wake(self) -> None:
        """New work exists: claim now rather than at the next poll."""
        self._wake.set()

    @property
    def identity(self) -> str:
        """The name this worker claims and renews under: its liveness lock's identity in a fleet."""
        return self.worker_id if self._liveness is None else self._liveness.identity

    @property
    def _may_claim(self) -> bool:
        return self._liveness is None or self._liveness.alive

    @property
    def inflight(self) -> int:
        """Requests running as tasks."""
        return len(self._inflight)

    @property
    def claimed(self) -> int:
        """Requests claimed and not settled yet: running as tasks, or waiting to be started."""
        return len(self._inflight) + len(self._queue)

    @property
    def _dry(self) -> bool:
        """Nothing left to run here: drained, nothing queued or running. Results then are written
        at once rather than waiting for company."""
        return self._drained and not self._queue and not self._inflight

    async def start(self, *, recover_all: bool = False) -> None:
        """recover_all: this process owns the store alone (SQLite), so every lease is stale."""
        if self._liveness is not None:
            await self._liveness.start()  # before the first claim: every claim is under a held lock
        now = time.time()
        await self.store.recover_leases(
            now=now, everything=recover_all, takeover_after=self.settings.takeover_after
        )
        await sweeps.sweep(self.store, self.settings, self.router.tools, now, starting=True)
        await self.store.listen(self.wake)  # PostgreSQL: other processes announce new work
        if self.webhooks is not None:
            await self.webhooks.sync_config()  # before the API answers: configured endpoints exist
        self._loops = loops.Loops(
            claim=asyncio.create_task(loops.supervised(self._claim_loop), name="batchd claim loop"),
            writer=asyncio.create_task(loops.supervised(self._write_loop), name="batchd result writer"),
            maintenance=asyncio.create_task(
                loops.supervised(self._maintenance_loop), name="batchd maintenance"
            ),
            heartbeat=asyncio.create_task(loops.supervised(self._heartbeat_loop), name="batchd heartbeat"),
            watchdog=asyncio.create_task(loops.supervised(self._watchdog_loop), name="batchd call watchdog"),
            liveness=None
            if self._liveness is None
            else asyncio.create_task(loops.supervised(self._liveness.run), name="batchd worker lock"),
            webhooks=None
            if self.webhooks is None
            else asyncio.create_task(loops.supervised(self.webhooks.run), name="batchd webhooks"),
        )

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Stops claiming, gives the requests in flight `grace` seconds, writes every result it
        can (STOP_FLUSH seconds at most), and only then stops the writer."""
        self._stopping = True
        self._wake.set()
        self._capacity.set()
        loops, self._loops = self._loops, None  # None: never started (or stopped already)
        if loops is not None:
            loops.claim.cancel()
            for task in loops.housekeeping:
                task.cancel()
        if self._inflight:
            _, pending = await asyncio.wait(self._inflight, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._liveness is not None:
            # In a fleet, what this process will not finish goes back to pending at once, uncounted.
            self._give_up(self._queue)
            self._queue.clear()
        try:
            await asyncio.wait_for(self._flush(), STOP_FLUSH)
            if self._liveness is not None:
                await asyncio.wait_for(self._liveness.release(), STOP_FLUSH)
        except TimeoutError:
            # A store that stays down must not hold the process forever: these requests' leases
            # lapse and they run again elsewhere (their results were never written).
            logger.warning("stopping without writing every result: the store is unavailable")
        if loops is not None:
            loops.writer.cancel()  # last: it wrote results while the requests in flight finished
            last = [loops.claim, loops.writer, *loops.housekeeping]
            if loops.liveness is not None:
                loops.liveness.cancel()
                last.append(loops.liveness)
            await asyncio.gather(*last, return_exceptions=True)
        if self._liveness is not None:
            self._liveness.close()

    # -- claiming -------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        """Claims into a queue and starts what it holds, claiming the next chunk meanwhile.

        Queued requests count against `concurrency` as running ones do, so a claim still never
        exceeds the free capacity; but the store's claim round trip overlaps the running of the
        previous chunk rather than idling the engine in between.
        """
        concurrency = self.settings.concurrency
        chunk = min(self.settings.claim_chunk, concurrency)
        queue = self._queue
        claiming: asyncio.Task[list[models.ClaimedRequest]] | None = None
        asked = 0  # requests the claim in flight may bring
        claimed_as = self.identity  # the identity the claim in flight is made under
        try:
            while not self._stopping:
                free = concurrency - len(self._inflight) - len(queue) - asked
                if claiming is None and not self._drained and free >= max(1, chunk // 4) and self._may_claim:
                    asked = min(free, chunk)
                    self._wake.clear()
                    claimed_as = self.identity
                    claiming = asyncio.create_task(
                        self.store.claim_requests(
                            claimed_as, asked, now=time.time(), lease=self.settings.lease
                        )
                    )
                if queue:
                    for _ in range(min(len(queue), START_SLICE)):
                        self._start(queue.popleft())
                    await asyncio.sleep(0)  # let the API and the writer in between slices
                elif claiming is not None:
                    wanted, asked = asked, 0
                    try:
                        claimed = await claiming
                    except exceptions.StoreError as exc:
                        logger.warning("claim failed, retrying: %s", exc)
                        await asyncio.sleep(IDLE_POLL)
                        continue
                    finally:
                        claiming = None
                    self.metrics.claimed(len(claimed))
                    self._drained = len(claimed) < wanted
                    if self._liveness is not None:
                        if not self._liveness.alive or self.identity != claimed_as:
                            # The lock was lost meanwhile (and the rows are under the lost one).
                            self._liveness.give_up(claimed)
                            continue
                        self._liveness.claimed(claimed)
                    if self.settings.group_prefixes:
                        claimed = prefix.order(claimed)  # shared prompt prefixes run together (prefix caches)
                    self._held.update(req.key for req in claimed)
                    queue.extend(claimed)
                elif not self._may_claim:
                    await asyncio.sleep(IDLE_POLL)  # until the worker lock is taken again
                elif self._drained:
                    if self._dry:
                        self._dried.set()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(IDLE_POLL):
                            await self._wake.wait()
                    self._drained = False
                else:
                    self._capacity.clear()
                    await self._capacity.wait()
        finally:
            if claiming is not None:
                claiming.cancel()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._capacity.set()
        if self._dry:
            self._dried.set()

    # -- running one request ------------------------------------------------------------

    def _start(self, req: models.ClaimedRequest) -> None:
        """Settle `req` here and now when nothing about it can wait; otherwise run it as a task.

        A backend that answers without I/O (the simulator at zero latency) is called in line,
        without a task, a timeout or a semaphore round trip: a synchronous call cannot be
        interrupted or overlap another, so those would only cost time. Anything that may wait
        (a backoff before a retry, a requested delay, a route that must admit the call first:
        busy, prefix-scheduled or fleet-limited; any other backend) goes to `_run`.
        """
        try:
            prepared, route = self._prepare(req)
        except Exception as exc:
            self._settle(req, None, exc)
            return
        failed = None
        answer = route.backend.instant
        if answer is not None and route.admits_now and not self._in_slot(route):
            model = prepared["model"]
            start = time.monotonic()
            try:
                message, pause = answer(prepared, attempt=1)
            except exceptions.BackendError as exc:
                self.metrics.backend_latency(model, time.monotonic() - start)
                if not exc.retryable:
                    self.metrics.backend_error(model, exc.error_type, retried=False)
                    self._settle(req, model, exc)
                    return
                failed = exc  # the task backs off and retries
            except Exception as exc:
                self._settle(req, model, exc)
                return
            else:
                if pause <= 0:
                    self.metrics.backend_latency(model, time.monotonic() - start)
                    self._settle(req, model, message)
                    return
                # A requested delay: the task asks again and waits, under the call timeout.
        task = asyncio.create_task(
            self._run(req, prepared, route, failed), name=f"dispatch {req.batch_id}/{req.custom_id}"
        )
        self._inflight.add(task)
        task.add_done_callback(self._done)

    def _prepare(self, req: models.ClaimedRequest) -> tuple[dict[str, Any], Route]:
        if req.claims >= self.settings.max_claims:
            # Every earlier worker died while running it: do not let it take down another.
            raise exceptions.BackendError(
                f"The request was abandoned by {req.claims} crashed workers and is not retried",
                status=500,
                error_type="api_error",
            )
        if models.is_openai_batch(req.batch_id):
            return self._lines.prepare(req, self.router)
        prepared = params.prepare(
            params.decode(req.params),
            strict=self.settings.strict,
            default_thinking_budget=self.settings.thinking_budget,
        )
        return prepared, self.router.route(prepared["model"])

    def _in_slot(self, route: Route) -> bool:
        """Whether calls on `route` must hold one of its fleet-wide slots (PostgreSQL)."""
        return bool(route.config is not None and route.config.fleet_concurrency and self._acquire_slot)

    def _settle(self, req: models.ClaimedRequest, model: object, fate: dict[str, Any] | Exception) -> None:
        """The one way a request ends here: its outcome is queued for the writer."""
        outcome = outcomes.settle(req, fate)
        self._results.append(outcome)
        self._have_results.set()
        self.metrics.result(outcome.result_type, model)

    async def _run(
        self,
        req: models.ClaimedRequest,
        prepared: dict[str, Any],
        route: Route,
        failed: exceptions.BackendError | None = None,
    ) -> None:
        scope.workspace.set(req.workspace or scope.DEFAULT)  # this task's: whose containers and files
        try:
            fate: dict[str, Any] | Exception = await self._attempts(req, prepared, route, failed)
        except asyncio.CancelledError:
            # Shutdown, or a fleet worker's lock lost: the request runs again, here or elsewhere.
            self._give_up([req])
            raise
        except Exception as exc:
            fate = exc
        self._settle(req, prepared["model"], fate)

    def _give_up(self, requests: Iterable[models.ClaimedRequest]) -> None:
        """Stops holding these requests: no more heartbeats; in a fleet, released to pending."""
        requests = list(requests)
        self._held.difference_update(req.key for req in requests)
        if self._liveness is not None:
            self._liveness.give_up(requests)

    def _abandon(self) -> None:
        """The worker lock went unconfirmed too long (engine/liveness.py): stop working on every
        request in hand before another process may take it over. Results settled are still written."""
        self._give_up(self._queue)
        self._queue.clear()
        for task in self._inflight:
            task.cancel()  # each gives its request up as it ends (_run)

    async def _renew(self, identity: str) -> None:
        """Renews the leases of the requests in hand under `identity`, moving them to it."""
        await self.store.heartbeat(identity, list(self._held), now=time.time(), lease=self.settings.lease)

    async def _attempts(
        self,
        req: models.ClaimedRequest,
        prepared: dict[str, Any],
        route: Route,
        failed: exceptions.BackendError | None,
    ) -> dict[str, Any]:
        """The backend's answer, asked again as the retry policy allows; raises the last failure.

        failed: attempt 1 already failed so (in line, in `_start`).
        """
        attempt = 0 if failed is None else 1
        while True:
            if failed is not None:
                s = self.settings
                delay = retry.delay_for(failed, attempt, base=s.retry_base, ceiling=s.retry_max)
                if not retry.should_retry(
                    failed,
                    attempts=attempt,
                    max_attempts=s.max_attempts,
                    now=time.time(),
                    delay=delay,
                    deadline=req.expires_at,
                ):
                    self.metrics.backend_error(prepared.get("model"), failed.error_type, retried=False)
                    raise failed
                self.metrics.retry(failed.error_type)
                self.metrics.backend_error(prepared.get("model"), failed.error_type, retried=True)
                logger.debug("retrying %s/%s in %.2fs: %s", req.batch_id, req.custom_id, delay, failed)
                await asyncio.sleep(delay)
            attempt += 1
            try:
                # Admission first (the route's slots, its prefix scheduler): the call's clock
                # starts only once the route takes it.
                async with route.admit(prepared):
                    if self._in_slot(route):
                        return await self._call_in_slot(route, prepared, attempt)
                    return await self._call(route.backend, prepared, attempt)
            except exceptions.BackendError as exc:
                failed = exc

    async def _call(self, backend: Backend, prepared: dict[str, Any], attempt: int) -> dict[str, Any]:
        # One watchdog enforces every call's deadline: far cheaper per call than a timeout
        # context, which matters at thousands of requests a second.
        task = asyncio.current_task()
        assert task is not None
        started = time.monotonic()
        self._deadlines[task] = started + self.settings.request_timeout
        try:
            return await backend.create_message(prepared, attempt=attempt)
        except asyncio.CancelledError:
            if task not in self._timed_out:
                raise
            self._timed_out.discard(task)
            task.uncancel()
            raise exceptions.BackendTimeout(
                f"The backend did not answer within {self.settings.request_timeout:g}s"
            ) from None
        finally:
            del self._deadlines[task]
            self.metrics.backend_latency(prepared.get("model"), time.monotonic() - started)

    async def _call_in_slot(self, route: Route, prepared: dict[str, Any], attempt: int) -> dict[str, Any]:
        """_call holding one of the route's fleet-wide slots (waiting for one up to request_timeout)."""
        assert self._acquire_slot is not None and self._release_slot is not None
        assert route.config is not None  # see _in_slot
        name, limit, wait = route.config.model, route.config.fleet_concurrency, self.settings.request_timeout
        try:
            token = await self._acquire_slot(name, limit, deadline=time.monotonic() + wait)
        except TimeoutError:
            raise exceptions.BackendError(
                f"No fleet-wide slot of route {name} came free within {wait:g}s",
                status=529,
                error_type="overloaded_error",
                retryable=True,
            ) from None
        try:
            return await self._call(route.backend, prepared, attempt)
        finally:
            await self._release_slot(token)

    async def _watchdog_loop(self) -> None:
        interval = min(1.0, self.settings.request_timeout / 4)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for task, deadline in list(self._deadlines.items()):
                if deadline <= now and task not in self._timed_out:
                    self._timed_out.add(task)
                    task.cancel()

    # -- writing results ------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            await self._have_results.wait()
            if len(self._results) < FLUSH_MAX and not self._dry:
                # Let more results share the commit, unless the last of the work finishes meanwhile.
                self._dried.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.store.commit_interval):
                        await self._dried.wait()
            await self._flush()

    async def _flush(self) -> None:
        while self._results:
            chunk, self._results = self._results[:FLUSH_MAX], self._results[FLUSH_MAX:]
            if not self._results:
                self._have_results.clear()
            while True:
                try:
                    await self.store.complete_requests(chunk, now=time.time())
                    self._held.difference_update(o.key for o in chunk)
                    break
                except exceptions.StoreError as exc:
                    # Keep the results: the store may come back before the leases lapse.
                    logger.warning("writing %d results failed, retrying: %s", len(chunk), exc)
                    await asyncio.sleep(IDLE_POLL)
                except Exception:
                    # A driver error the store did not translate: still never drop a result.
                    logger.exception("writing %d results failed unexpectedly, retrying", len(chunk))
                    await asyncio.sleep(IDLE_POLL)

    # -- housekeeping ---------------------------------------------------------------------

    async def _maintenance_loop(self) -> None:
        await sweeps.every_interval(self.store, self.settings, self.router.tools)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lease / 3)
            try:
                await self._renew(self.identity)
            except exceptions.StoreError as exc:
                logger.warning("heartbeat failed: %s", exc)

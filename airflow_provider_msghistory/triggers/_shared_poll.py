"""What the export waits of one triggerer share: one client per connection, and for list-tracked vendors
one export-list poll per page size.

Job-tracked vendors (8x8) have no list: each wait polls its own job on the connection's one shared client
and connection pool, at the cadence of :mod:`~airflow_provider_msghistory.client.cadence` (spread over the
interval, sparser while the job is young); two waits on one job in one loop (a trigger run twice) share
their looks, so the job costs one request per interval (:class:`ExportWatch` does both kinds).

List-tracked vendors (Qlara):

A triggerer runs many export waits in one event loop. Polled one by one, each wait reads (and parses) a
list page per poll interval, and a thousand waits keep the loop busy parsing the same pages over and over.
Here, while any wait is registered, one task per (loop, connection, page size) reads the export list once
per interval, each page at most once per round (:meth:`AsyncExportClient.find_exports`), and hands every
wait the state of its own export. The waits share one :class:`AsyncExportClient` per (loop, connection),
built once (again only when the API refuses its credentials) and closed when the last wait leaves.

What an observed state means is still decided per wait, in :mod:`~airflow_provider_msghistory.client.waiting`:
this module only fetches. A failed round is handed to each wait as an error of its look, so each wait
judges it (transient: keep waiting) and keeps its own deadline, regeneration count and page hint.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import time
import weakref
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from airflow_provider_msghistory.client.api import AsyncExportClient
from airflow_provider_msghistory.client.cadence import JobCadence, first_look_offset
from airflow_provider_msghistory.client.errors import AuthenticationError
from airflow_provider_msghistory.client.models import ExportJob, ExportStatus
from airflow_provider_msghistory.client.refs import ExportRef
from airflow_provider_msghistory.client.transport.aio import within
from airflow_provider_msghistory.client.transport.pools import ASYNC_POOL
from airflow_provider_msghistory.client.waiting import (
    LAST_LOOK_LEAD,
    is_transient,
    transient_delay,
    until_last_look,
)
from airflow_provider_msghistory.triggers import _gc

# Waits woken per event-loop iteration when a round's looks are handed out.
WAKE_BATCH = 50
# Job-tracked looks started per event-loop iteration (see _LookGate).
LOOKS_PER_ITERATION = 16
# A round comes this many intervals after the previous one when waits joined since it started.
JOINED_ROUND = 0.5
# A new poll's first round waits for a pause of JOIN_QUIET seconds in the waits joining, MAX_SETTLE at most.
JOIN_QUIET = 0.05
MAX_SETTLE = 1.0


@dataclass(frozen=True)
class Look:
    """What one shared round saw of one export.

    :param job: the export as the list shows it (``None``: not in the list, or the round failed).
    :param page: the list page it was on.
    :param error: why the round failed (``None`` when it did not).
    :param round: number of the round, counted per poller.
    """

    job: ExportJob | None
    page: int
    error: Exception | None
    round: int


class _Subscription:
    """One wait registered with a poller: its export, page hint, interval and latest look."""

    def __init__(
        self, export_id: str, page_hint: int, poll_interval: float, deadline: float | None = None
    ) -> None:
        self.export_id = export_id
        # The list knows the vendor's id; a restating export's id also carries its window (client.refs).
        self.job_id = ExportRef.parse(export_id).job_id
        self.page_hint = page_hint
        self.poll_interval = poll_interval
        self.deadline = deadline  # epoch seconds: the poll gives this wait a last look just before it
        self.after_round = 0  # looks from this round or an earlier one are stale
        self._look: Look | None = None
        self._waiting: asyncio.Future[None] | None = None

    def deliver(self, look: Look) -> None:
        if look.job is not None:
            # Exports only move to later pages: next round looks where it was seen, as the waiter does.
            self.page_hint = look.page
        self._look = look
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_result(None)

    async def next_look(self, timeout: float) -> Look | None:
        """The next fresh look, or ``None`` after ``timeout`` seconds without one.

        A bare future and a timer, not ``asyncio.wait_for`` (a task per call): a thousand waits take a
        look each round, all woken in the same loop iteration.
        """
        if self._look is None or self._look.round <= self.after_round:
            loop = asyncio.get_running_loop()
            self._waiting = loop.create_future()
            timer = loop.call_later(timeout, _resolve, self._waiting)
            try:
                await self._waiting
            finally:
                timer.cancel()
                self._waiting = None
            if self._look is None or self._look.round <= self.after_round:
                return None
        self.after_round = self._look.round
        return self._look


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Poller:
    """Reads the export list for every subscription of one (loop, connection, page size), round by round.

    Rounds start every ``min(poll_interval)`` of the subscriptions, counted from the start of the previous
    round (a steady cadence whatever the API's latency), half an interval when waits joined after a round
    started; after transient failures they back off as a lone wait would (:func:`transient_delay`), so a
    flapping API is not hammered by the shared poll either.
    """

    def __init__(self, share: _Share, client: AsyncExportClient, page_size: int) -> None:
        self.share = share
        self.client = client
        self.page_size = page_size
        self.subscriptions: set[_Subscription] = set()
        # How many subscriptions ask for each interval: the smallest is found without a pass over a
        # thousand subscriptions each time one joins or leaves.
        self._intervals: Counter[float] = Counter()
        # Last-look times (epoch seconds) of the subscriptions with a deadline: a heap, and how many live
        # subscriptions hold each (a leaving one is dropped from the heap lazily, when it comes to the top).
        self._lasts: list[float] = []
        self._live_lasts: Counter[float] = Counter()
        self.rounds_started = 0
        self._joined: set[_Subscription] = set()  # joined since the last round started: not served yet
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, subscription: _Subscription) -> None:
        self.subscriptions.add(subscription)
        self._joined.add(subscription)
        self._intervals[subscription.poll_interval] += 1
        if subscription.deadline is not None:
            last = subscription.deadline - LAST_LOOK_LEAD
            if not self._live_lasts[last]:
                heapq.heappush(self._lasts, last)
            self._live_lasts[last] += 1
        if self._task is None or self._task.done():
            # An empty context: the poll serves every wait, so it must not run in (and log into) the
            # context of whichever trigger happened to come first.
            self._task = contextvars.Context().run(asyncio.ensure_future, self._run())
        else:
            self._wake.set()  # reschedule the next round: a new wait is served within its interval

    def remove(self, subscription: _Subscription) -> None:
        if subscription in self.subscriptions:
            self.subscriptions.remove(subscription)
            self._joined.discard(subscription)
            self._intervals[subscription.poll_interval] -= 1
            if not self._intervals[subscription.poll_interval]:
                del self._intervals[subscription.poll_interval]
            if subscription.deadline is not None:
                last = subscription.deadline - LAST_LOOK_LEAD
                self._live_lasts[last] -= 1
                if not self._live_lasts[last]:
                    del self._live_lasts[last]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _interval(self) -> float:
        return min(self._intervals)

    async def _settle(self) -> None:
        """Before the first round: wait while waits keep joining (a triggerer starting thousands at once),
        so the first round serves them all, not only the first few; at most ``MAX_SETTLE`` seconds."""
        until = time.monotonic() + min(MAX_SETTLE, self._interval() / 2)
        while self.subscriptions and time.monotonic() < until:
            joined = len(self.subscriptions)
            await asyncio.sleep(JOIN_QUIET)
            if len(self.subscriptions) == joined:
                return

    async def _run(self) -> None:
        failures = 0
        await self._settle()
        while self.subscriptions:
            started = time.monotonic()
            self.rounds_started += 1
            subscriptions = list(self.subscriptions)
            self._joined.clear()
            hints: dict[str, int] = {}
            for subscription in subscriptions:  # two waits on one export: look from the earlier hint
                hint = hints.get(subscription.job_id, subscription.page_hint)
                hints[subscription.job_id] = min(hint, subscription.page_hint)
            error: Exception | None = None
            try:
                found = await self._find(hints)
            except Exception as failure:  # handed to each wait, which judges it; the poll goes on
                error, found = failure, {}
            failures = failures + 1 if error is not None and is_transient(error) else 0
            round_number = self.rounds_started
            for count, subscription in enumerate(subscriptions, 1):
                job, page = found.get(subscription.job_id, (None, 0))
                subscription.deliver(Look(job, page, error, round_number))
                if count % WAKE_BATCH == 0:
                    # Let the woken waits run before waking more: a thousand waits deciding (and logging)
                    # in one loop iteration would stall the loop for everything else.
                    await asyncio.sleep(0)
            await self._sleep_until_next_round(started, failures, error)

    def _until_last_look(self) -> float:
        """Seconds until the round that gives the wait with the earliest deadline its last look (a
        back-off never outlasts a deadline); infinity when no wait has one ahead. Not a pass over ten
        thousand subscriptions on every wake-up: the heap's top, past lasts and left waits dropped."""
        now = time.time()
        lasts = self._lasts
        while lasts and (lasts[0] <= now or not self._live_lasts[lasts[0]]):
            heapq.heappop(lasts)
        return lasts[0] - now if lasts else float("inf")

    async def _find(self, hints: dict[str, int]) -> dict[str, tuple[ExportJob | None, int]]:
        try:
            return await self.client.find_exports(hints, self.page_size)
        except AuthenticationError:
            # The shared client holds the credentials of when the first wait joined; a busy triggerer may
            # keep it for days. Rebuild it from the connection (a rotated key) once before believing a 401.
            self.client = await self.share.fresh_client(self.client)
            return await self.client.find_exports(hints, self.page_size)

    async def _sleep_until_next_round(self, started: float, failures: int, error: Exception | None) -> None:
        while self.subscriptions:
            interval = self._interval()
            delay = transient_delay(failures, interval, error) if failures else interval
            if self._joined:
                # A wait that joined since the round started gets its first look within half an interval
                # (a triggerer starting thousands of waits: those after the first round's start would
                # wait a whole interval); one that joined during a back-off, within an interval. Rounds
                # then come at most twice per interval, while waits keep joining.
                delay = min(delay, interval if failures else interval * JOINED_ROUND)
            wait = min(started + delay - time.monotonic(), self._until_last_look())
            if wait <= 0:
                return
            self._wake.clear()
            try:
                await within(self._wake.wait(), wait)
            except asyncio.TimeoutError:
                return


class _LookGate:
    """Admits job-tracked looks in the order they ask: at most ``size`` in flight, at most
    :data:`LOOKS_PER_ITERATION` started per event-loop iteration.

    Per iteration: starting a look costs the loop a request's build and send (1-2 ms of CPU with httpx);
    ten thousand waits due together would otherwise start a pool's worth (256) in one iteration. In
    flight: a thousand requests queued inside httpx's pool cost a scan of its queue per released
    connection (quadratic, seconds of a blocked loop). The responses of every look in flight can still
    land in one iteration (2-3 ms of CPU each): 64 in flight bounded that stall better (215 ms against
    330 ms outside collections, 10,000 waits) but capped a loop at 64 / latency requests/s (320/s at
    200 ms), below what its CPU can send; the pool's size is kept.

    :param size: looks in flight at most.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.in_flight = 0
        self._queue: deque[asyncio.Future[None]] = deque()
        self._freed = asyncio.Event()
        self._admitter: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the ``size`` slots, once admitted."""
        admitted = asyncio.get_running_loop().create_future()
        self._queue.append(admitted)
        if self._admitter is None or self._admitter.done():
            # An empty context, as the list poll's: it serves every wait.
            self._admitter = contextvars.Context().run(asyncio.ensure_future, self._admit())
        try:
            await admitted
        except asyncio.CancelledError:
            if admitted.done() and not admitted.cancelled():  # admitted as the wait was cancelled
                self._release()
            raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        self.in_flight -= 1
        self._freed.set()

    async def _admit(self) -> None:
        while self._queue:
            started = 0
            while self._queue and self.in_flight < self.size and started < LOOKS_PER_ITERATION:
                admitted = self._queue.popleft()
                if not admitted.done():  # a cancelled wait asks no more
                    admitted.set_result(None)
                    self.in_flight += 1
                    started += 1
            if self.in_flight >= self.size:
                self._freed.clear()
                await self._freed.wait()
            else:
                await asyncio.sleep(0)  # the admitted start in the next iteration; more in the one after

    def close(self) -> None:
        if self._admitter is not None:
            self._admitter.cancel()


class _Share:
    """What the waits on one connection share in one event loop: the client and a poller per page size."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self.users = 0
        self.pollers: dict[int, _Poller] = {}
        self._client: asyncio.Future[AsyncExportClient] | None = None
        self._replaced: list[AsyncExportClient] = []  # closed with the share: a wait may still use one
        # Waits that came while the client was being built, let on WAKE_BATCH per loop iteration.
        self._arrivals: deque[asyncio.Future[None]] = deque()
        self._admitter: asyncio.Task[None] | None = None
        self.gate = _LookGate(ASYNC_POOL)  # job-tracked looks: in flight, started per loop iteration
        self.cadence: JobCadence | None = None  # job-tracked: set with the client
        self.job_looks: dict[str, _JobLook] = {}  # job-tracked: each job's latest look, shared by its waits
        # Per export, while a wait holds it (weakly: no bookkeeping when the last wait leaves).
        self.export_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def client(self) -> AsyncExportClient:
        if self._client is not None and self._client.done() and not self._client.cancelled():
            return self._client.result()  # the usual case once built
        if self._client is None:
            self._start_build()
        # Not awaited directly: ten thousand waits started together would all wake in one loop iteration
        # once it is built. A wait cancelled meanwhile leaves the build running for the others.
        arrival = asyncio.get_running_loop().create_future()
        self._arrivals.append(arrival)
        await arrival
        assert self._client is not None
        return await asyncio.shield(self._client)

    def _start_build(self) -> None:
        build = self._client = asyncio.ensure_future(self._build())
        if self._admitter is None or self._admitter.done():
            self._admitter = asyncio.ensure_future(self._admit(build))

    async def _admit(self, build: asyncio.Future[AsyncExportClient]) -> None:
        await asyncio.wait([build])
        while self._arrivals:
            for _ in range(min(WAKE_BATCH, len(self._arrivals))):
                arrival = self._arrivals.popleft()
                if not arrival.done():
                    arrival.set_result(None)
            await asyncio.sleep(0)
            current = self._client
            if current is not None and not current.done():  # rebuilt meanwhile: the rest wait for it
                await asyncio.wait([current])

    async def fresh_client(self, stale: AsyncExportClient) -> AsyncExportClient:
        """A client built anew from the connection, unless ``stale`` was already replaced: then that one."""
        current = await self.client()
        if current is stale:
            self._replaced.append(stale)
            self._start_build()
            assert self._client is not None
            current = await asyncio.shield(self._client)
        return current

    async def _build(self) -> AsyncExportClient:
        # Imported here: the hook pulls in Airflow's connection machinery, which the triggerer only needs
        # once a trigger runs.
        from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

        return await MsgHistoryHook(msghistory_conn_id=self.conn_id).aget_client()

    def poller(self, client: AsyncExportClient, page_size: int) -> _Poller:
        poller = self.pollers.get(page_size)
        if poller is None:
            poller = self.pollers[page_size] = _Poller(self, client, page_size)
        return poller

    async def release_poller(self, poller: _Poller) -> None:
        if not poller.subscriptions and self.pollers.get(poller.page_size) is poller:
            del self.pollers[poller.page_size]
            await poller.stop()

    async def close(self) -> None:
        if self._admitter is not None:
            self._admitter.cancel()
        self.gate.close()
        for client in self._replaced:
            await client.aclose()
        if self._client is None:
            return
        if not self._client.done():
            self._client.cancel()
        elif not self._client.cancelled() and self._client.exception() is None:
            await self._client.result().aclose()


# Per event loop (weakly: a loop that is gone takes its shares along), per connection id.
_shares: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Share]] = weakref.WeakKeyDictionary()


class ExportWatch:
    """One wait's handle on the share: :meth:`start`, then :meth:`next_look` per poll, :meth:`stop`.

    A list-tracked vendor's looks come from the connection's shared list poll; a job-tracked vendor's are
    this wait's own status requests (one per poll interval, on the shared client).

    :param conn_id: Airflow connection of the API.
    :param export_id: the export to watch.
    :param page_hint: export-list page to look on first.
    :param page_size: export-list page size to look with.
    :param poll_interval: the longest this wait wants between two looks.
    :param deadline: the wait's deadline (epoch seconds), if any: a backed-off poll looks once more before.
    """

    def __init__(
        self,
        conn_id: str,
        export_id: str,
        page_hint: int,
        page_size: int,
        poll_interval: float,
        deadline: float | None = None,
    ) -> None:
        self.conn_id = conn_id
        self.page_size = page_size
        self._subscription = _Subscription(export_id, page_hint, poll_interval, deadline)
        self._share: _Share | None = None
        self._poller: _Poller | None = None
        self._own: _OwnPoll | None = None

    @property
    def client(self) -> AsyncExportClient:
        """The shared client (for the wait's own calls, e.g. regenerating a link or cancelling)."""
        if self._poller is not None:
            return self._poller.client
        if self._own is not None:
            return self._own.client
        raise RuntimeError("ExportWatch.start() was not awaited")

    async def start(self) -> None:
        """Join the connection's share (building its client if this is the first wait) and its poll.

        Raises what building the client raised (e.g. an unknown connection); the wait is then not joined.
        """
        shares = _shares.setdefault(asyncio.get_running_loop(), {})
        share = shares.get(self.conn_id)
        if share is None:
            share = shares[self.conn_id] = _Share(self.conn_id)
        share.users += 1
        self._share = share
        _gc.enter()  # left in stop(), which every started wait reaches
        try:
            client = await share.client()
        except BaseException:
            await self.stop()
            raise
        if client.caps.tracking == "list":
            self._poller = share.poller(client, self.page_size)
            self._poller.add(self._subscription)
        else:
            if share.cadence is None:
                share.cadence = JobCadence(client.dialect.typical_export_seconds)
            self._own = _OwnPoll(share, client, self._subscription)

    async def next_look(self, timeout: float) -> Look | None:
        """The look of the next round (one started after the previous look and skipped rounds), or
        ``None`` when none came within ``timeout`` seconds.
        """
        if self._own is not None:
            return await self._own.next_look(timeout)
        return await self._subscription.next_look(timeout)

    def export_lock(self) -> asyncio.Lock:
        """The lock the waits on this export in this loop take turns with to act on it (regenerate)."""
        if self._share is None:
            raise RuntimeError("ExportWatch.start() was not awaited")
        lock = self._share.export_locks.get(self._subscription.export_id)
        if lock is None:
            lock = self._share.export_locks[self._subscription.export_id] = asyncio.Lock()
        return lock

    def skip_rounds_started(self) -> None:
        """Ignore looks of the rounds already started: after acting on the export (a regeneration), only a
        list read after the action says anything about it.
        """
        if self._poller is not None:
            self._subscription.after_round = self._poller.rounds_started

    async def repage(self, page_size: int, page_hint: int) -> None:
        """Move to the poll with another page size (a server capping the page size), from ``page_hint``."""
        if self._share is None or self._poller is None:
            raise RuntimeError("ExportWatch.start() was not awaited")
        self._poller.remove(self._subscription)
        await self._share.release_poller(self._poller)
        self.page_size = page_size
        old = self._subscription
        self._subscription = _Subscription(old.export_id, page_hint, old.poll_interval, old.deadline)
        self._poller = self._share.poller(self._poller.client, page_size)
        self._poller.add(self._subscription)

    async def stop(self) -> None:
        """Leave the poll; the last wait of a connection stops its poll and closes its client."""
        share, poller, own = self._share, self._poller, self._own
        self._share = self._poller = self._own = None
        if share is None:
            return
        if own is not None:
            own.leave()
        # Bookkeeping first, synchronously: a wait joining meanwhile must find a consistent registry.
        share.users -= 1
        _gc.leave()
        last = share.users == 0
        if last:
            shares = _shares.get(asyncio.get_running_loop(), {})
            if shares.get(share.conn_id) is share:
                del shares[share.conn_id]
        if poller is not None:
            poller.remove(self._subscription)
            await share.release_poller(poller)
        if last:
            await share.close()


_FINISHED = (ExportStatus.COMPLETED, ExportStatus.EMPTY, ExportStatus.FAILED)


@dataclass
class _JobLook:
    """The latest look at one job in a loop, and how many waits follow the job (a trigger run twice)."""

    waits: int
    started: float = float("-inf")  # monotonic time the look's request left
    job: ExportJob | None = None
    error: Exception | None = None
    pending: asyncio.Future[None] | None = None  # a look under way, done when it ends (or is cancelled)


class _OwnPoll:
    """A job-tracked wait's own looks, on the shared client: the first at a point of the first interval
    fixed by the export id, then at the connection's :class:`JobCadence` (every interval, sparser while
    the job is young); transient failures back off as the list poll does (:func:`transient_delay`).

    Another wait on the same job in this loop (Airflow running a trigger twice) takes this wait's look
    when it is due within an interval of it or while it is under way, and the other way round: one request
    per interval per job.
    """

    def __init__(self, share: _Share, client: AsyncExportClient, subscription: _Subscription) -> None:
        self.share = share
        self.client = client
        self.subscription = subscription
        self.rounds = 0
        self.failures = 0
        self.started = time.monotonic()
        self._seen = self.started  # looks that started before this are not news to this wait
        self._next_at = self.started + first_look_offset(subscription.export_id, subscription.poll_interval)
        shared = share.job_looks.get(subscription.export_id)
        if shared is None:
            shared = share.job_looks[subscription.export_id] = _JobLook(0)
        shared.waits += 1
        self._shared = shared

    def leave(self) -> None:
        self._shared.waits -= 1
        if not self._shared.waits and self.share.job_looks.get(self.subscription.export_id) is self._shared:
            del self.share.job_looks[self.subscription.export_id]

    async def next_look(self, timeout: float) -> Look | None:
        wait = self._next_at - time.monotonic()
        if wait > timeout:
            await asyncio.sleep(timeout)
            return None
        if wait > 0:
            await asyncio.sleep(wait)
        self.rounds += 1
        interval = self.subscription.poll_interval
        started, job, error = await self._fresh_look(interval)
        self._seen = started
        self.failures = self.failures + 1 if error is not None and is_transient(error) else 0
        cadence = self.share.cadence
        age = started - self.started
        if job is not None and job.status in _FINISHED and cadence is not None:
            cadence.finished(age)
        if self.failures:
            delay = transient_delay(self.failures, interval, error)
        else:
            delay = interval if cadence is None else cadence.delay(age, interval)
        # A back-off never outlasts the deadline: the wait gets a last look just before it.
        self._next_at = started + min(delay, until_last_look(self.subscription.deadline, time.time()))
        return Look(job, 0, error, self.rounds)

    async def _fresh_look(self, interval: float) -> tuple[float, ExportJob | None, Exception | None]:
        """A twin's look if it is fresh or under way (twins come due together), else this wait's own."""
        shared = self._shared
        while True:
            if shared.started > self._seen and time.monotonic() - shared.started < interval:
                return shared.started, shared.job, shared.error
            if shared.pending is None:
                break
            # Shielded: this wait being cancelled must not cancel the twin's look. A twin cancelled before
            # its look left leaves no fresh look: this wait then takes its own.
            await asyncio.shield(shared.pending)
        pending = shared.pending = asyncio.get_running_loop().create_future()
        try:
            # The cadence counts from when a look leaves the gate.
            async with self.share.gate.slot():
                started = time.monotonic()
                error, job = None, None
                try:
                    job = await self._look()
                except Exception as failure:  # judged by the wait, as a failed shared round would be
                    error = failure
            shared.started, shared.job, shared.error = started, job, error
        finally:
            shared.pending = None
            pending.set_result(None)
        return started, job, error

    async def _look(self) -> ExportJob | None:
        export_id = self.subscription.export_id
        try:
            return (await self.client.look(export_id, 0, 0))[0]
        except AuthenticationError:
            # As the list poll does: a rotated key is picked up from the connection once before a 401 counts.
            self.client = await self.share.fresh_client(self.client)
            return (await self.client.look(export_id, 0, 0))[0]

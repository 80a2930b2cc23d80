"""Sending at a provider's pace: a throttle per business number and a minimum
interval per recipient. The throttle spaces sends evenly and never catches up after
a delay, so no one-second window ever holds more than the cap: the provider's
rate-limit errors (WhatsApp 130429, 131056) are avoided rather than answered."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from buurtalert.shared.channels import TierSchedule
from buurtalert.shared.logging import get_logger

log = get_logger(__name__)
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def spacing(rate: float, margin: float, burst: int | None) -> tuple[float, float]:
    """The interval between sends at ``rate`` times ``margin``, and how far behind its
    time a send may still go (``burst`` intervals; by default half the room the margin
    leaves, at least one send where there is room, the other half for requests that
    arrive closer together than they left)."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    interval = 1.0 / (rate * margin)
    if burst is None:
        room = int(rate * (1 - margin)) - 1
        burst = max(0, min(room, max(1, room // 2)))
    return interval, burst * interval


class Throttle:
    """At most ``rate`` sends in any one-second window, as close to it as a busy
    sender gets (GCRA, the generic cell rate algorithm).

    Sends are scheduled ``1 / (rate * margin)`` apart; a send may go up to ``burst``
    intervals ahead of its schedule, which lets a sender that fell behind (a slow
    response, a busy event loop) catch up that far, never further. ``margin`` leaves
    room for that burst: ``rate * margin + burst + 1`` never exceeds ``rate``.
    The catch-up allowance was chosen from the fan-out benchmark (docs/benchmarks.md)."""

    def __init__(
        self,
        rate: float,
        *,
        margin: float = 0.97,
        burst: int | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._margin, self._burst = margin, burst
        self._clock, self._sleep = clock, sleep
        self._theoretical = 0.0  # when the next send is due on schedule
        self._lock = asyncio.Lock()
        self.pace(rate)

    def pace(self, rate: float) -> None:
        """Send at ``rate`` from now on (the process's share of a cap changed)."""
        self.interval, self.tolerance = spacing(rate, self._margin, self._burst)
        self.rate = rate

    async def acquire(self) -> None:
        """Wait for this send's turn."""
        async with self._lock:
            now = self._clock()
            allowed = self._theoretical - self.tolerance
            if allowed > now:
                await self._sleep(allowed - now)
                now = allowed
            self._theoretical = max(self._theoretical, now) + self.interval


class SharedThrottle:
    """At most ``rate`` sends in any one-second window across every process that sends
    for ``account``: each takes its send times from the shared :class:`TierSchedule` in
    blocks of ``block`` seconds' worth, when it has something to send. A process with
    nothing to send takes nothing, so the others get the whole tier (sharing by
    partitions leaves a process's share unused once its partitions are done). A send
    time that passed while the process was busy is dropped, never caught up.
    A process that holds all of the delivery topic's partitions (its fallback paces at
    the whole tier) is alone and paces by itself, without round trips.
    The schedule is wall-clock time (``time.time``): the processes' clocks must agree
    (NTP keeps them within milliseconds; the margin absorbs that). When the schedule
    cannot be reached, sends go at this process's ``fallback`` pace (its share of the
    tier by partitions) for the next ``away`` seconds, then the schedule is tried again."""

    def __init__(
        self,
        schedule: TierSchedule,
        account: str,
        rate: float,
        *,
        fallback: Throttle,
        margin: float = 0.97,
        block: float = 0.1,
        away: float = 5.0,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.schedule, self.account, self.fallback = schedule, account, fallback
        self.rate = rate
        # no catch-up: two processes' late sends and on-time ones would add up
        self.interval, self.tolerance = spacing(rate, margin, 0)
        self.count = max(1, round(block / self.interval))
        self.away = away
        self._clock, self._sleep = clock, sleep
        self._times: deque[float] = deque()
        self._lock = asyncio.Lock()
        self._unreachable_until = float("-inf")
        self._next: asyncio.Future[float] | None = None  # the next block, being reserved

    async def acquire(self) -> None:
        """Wait for this send's time: from the shared schedule while the tier is shared,
        at this process's own pace while it holds every partition (no one else sends)."""
        async with self._lock:  # one send at a time, as the pace changes between the two
            if self.fallback.rate >= self.rate:
                self._leave_next()
                await self.fallback.acquire()
                return
            self._drop_passed()
            if not self._times:
                await self._refill(self._clock())
                self._drop_passed()  # also of a block begun before it was taken
            if self._times:
                if len(self._times) <= self.count // 2:
                    self._reserve_next()  # the next block is taken while this one is sent
                # waited for in turn, as by Throttle: after a pause (a busy event loop)
                # the sends whose times passed do not all go at once
                wait = self._times.popleft() - self._clock()
                if wait > 0:
                    await self._sleep(wait)
                return
        await self.fallback.acquire()

    def _drop_passed(self) -> None:
        now = self._clock()
        while self._times and self._times[0] < now - self.tolerance:
            self._times.popleft()  # missed: the tier's second has moved on

    def _leave_next(self) -> None:
        """Alone, this process needs no block: one being taken ahead is left to finish (its
        times pass unused) and its failure, if any, is of no interest (not a reason to
        fall back to the partition share once the tier is shared again)."""
        if self._next is not None:
            self._next.add_done_callback(_ignore_outcome)
            self._next = None

    def _reserve_next(self) -> None:
        if self._next is None and self._clock() >= self._unreachable_until:
            self._next = asyncio.ensure_future(
                self.schedule.reserve(self.account, self._clock(), self.count, self.interval)
            )

    async def _refill(self, now: float) -> None:
        """The block reserved ahead, or one reserved now; none while the schedule is away."""
        if self._next is None and now >= self._unreachable_until:
            self._reserve_next()
        reserving, self._next = self._next, None
        if reserving is None:
            return
        try:
            first = await reserving
        except Exception as exc:  # the database is away: this process's share alone
            log.warning("tier_schedule_unavailable", account=self.account, error=repr(exc))
            self._unreachable_until = self._clock() + self.away
            return
        self._times.extend(first + n * self.interval for n in range(self.count))


def _ignore_outcome(future: asyncio.Future[float]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: asyncio does not report it as never retrieved


class Paced(Exception):
    """The recipient's turn is further away than a sender should wait for."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"the recipient's next message is due in {wait:.1f} s")
        self.wait = wait


class RecipientPacing:
    """At least ``interval`` seconds between two sends to the same recipient. A send
    whose turn is more than ``max_wait`` away raises :class:`Paced` instead of
    holding up everything behind it; the caller retries it later."""

    def __init__(
        self,
        interval: float,
        *,
        max_wait: float = 1.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.interval = interval
        self.max_wait = max_wait
        self._clock, self._sleep = clock, sleep
        self._last: dict[str, float] = {}

    async def acquire(self, recipient: str) -> float | None:
        """Wait for the recipient's turn and take it; answers the turn taken before it
        (for :meth:`give_back`)."""
        now = self._clock()
        before = self._last.get(recipient)
        due = (before if before is not None else float("-inf")) + self.interval
        if due - now > self.max_wait:
            raise Paced(due - now)
        self._last[recipient] = max(due, now)  # reserved before waiting: concurrent sends queue up
        if len(self._last) > 100_000:  # forget recipients whose interval has long passed
            horizon = now - self.interval
            self._last = {r: t for r, t in self._last.items() if t > horizon}
        if due > now:
            await self._sleep(due - now)
        return before

    def give_back(self, recipient: str, before: float | None) -> None:
        """The send that took the recipient's turn was refused (nothing reached them):
        the turn is theirs again, so its retry is not paced behind it. (One recipient's
        sends go in turn, in the lane of their destination: no later turn is undone.)"""
        if before is None:
            self._last.pop(recipient, None)
        else:
            self._last[recipient] = before

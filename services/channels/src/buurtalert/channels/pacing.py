"""Sending at a provider's pace: a throttle per business number and a minimum
interval per recipient. The throttle spaces sends evenly and never catches up after
a delay, so no one-second window ever holds more than the cap: the provider's
rate-limit errors (WhatsApp 130429, 131056) are avoided rather than answered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


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
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.interval = 1.0 / (rate * self._margin)
        burst = self._burst
        if burst is None:
            # Half the room the margin leaves (at least one send where there is room),
            # the other half for requests that arrive closer together than they left.
            room = int(rate * (1 - self._margin)) - 1
            burst = max(0, min(room, max(1, room // 2)))
        self.tolerance = burst * self.interval

    async def acquire(self) -> None:
        """Wait for this send's turn."""
        async with self._lock:
            now = self._clock()
            allowed = self._theoretical - self.tolerance
            if allowed > now:
                await self._sleep(allowed - now)
                now = allowed
            self._theoretical = max(self._theoretical, now) + self.interval


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

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
    """At most ``rate`` sends per second, evenly spaced (``margin`` below the cap)."""

    def __init__(
        self,
        rate: float,
        *,
        margin: float = 0.98,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / (rate * margin)
        self._clock, self._sleep = clock, sleep
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait for this send's turn."""
        async with self._lock:
            now = self._clock()
            if self._next > now:
                await self._sleep(self._next - now)
                now = self._next
            self._next = now + self.interval  # after a delay, no catching up


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

    async def acquire(self, recipient: str) -> None:
        now = self._clock()
        due = self._last.get(recipient, float("-inf")) + self.interval
        if due - now > self.max_wait:
            raise Paced(due - now)
        self._last[recipient] = max(due, now)  # reserved before waiting: concurrent sends queue up
        if len(self._last) > 100_000:  # forget recipients whose interval has long passed
            horizon = now - self.interval
            self._last = {r: t for r, t in self._last.items() if t > horizon}
        if due > now:
            await self._sleep(due - now)

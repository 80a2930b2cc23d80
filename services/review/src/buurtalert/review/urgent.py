"""Urgent items and their deadlines: an urgent item still undecided past its deadline is
notified to the municipality's on-duty moderators through channels, once per item, and
the ``review_urgent_overdue`` and queue-age gauges are kept up to date.

Bounded: the queue registers a deadline when it takes an urgent item
(``review_deadlines``) and the console deletes it when the item is decided, so the
periodic look reads the deadlines of the urgent items waiting, never the queue. Who is on
duty, and the deadline, come from the municipality file (``review:``)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from buurtalert.review.notices import deadline, overdue_notice
from buurtalert.review.rules import Item
from buurtalert.review.stores import Deadlines, Items
from buurtalert.shared.logging import bound, get_logger
from buurtalert.shared.metrics import REVIEW_QUEUE_AGE, REVIEW_URGENT_OVERDUE
from buurtalert.shared.models import Delivery, utcnow
from buurtalert.shared.mongo import Audit
from buurtalert.shared.settings import ReviewConfig

log = get_logger(__name__)
#: The audit stage recording that an item's lateness was notified (and to whom).
OVERDUE_STAGE = "review.overdue"


class UrgentWatch:
    """Deadlines of urgent items, the notices of those overdue, and the queue's gauges."""

    def __init__(
        self,
        items: Items,
        deadlines: Deadlines,
        audit: Audit,
        notify: Callable[[Delivery], Awaitable[None]],
        configs: Mapping[str, ReviewConfig],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.items = items
        self.deadlines = deadlines
        self.audit = audit
        self.notify = notify
        self.configs = configs
        self.clock = clock
        self._seen: set[str] = set(configs)

    def config(self, municipality: str) -> ReviewConfig:
        """The municipality's review settings (the defaults, nobody on duty, for one this
        deployment has no file for)."""
        return self.configs.get(municipality) or ReviewConfig()

    async def queued(self, item: Item) -> None:
        """An item entered the queue: an urgent message gets its deadline (again, harmlessly,
        when redelivered)."""
        if item.urgent and item.state == "open":
            due = deadline(item, self.config(item.municipality))
            await self.deadlines.add(item.id, item.municipality, due)

    async def decided(self, item_id: str) -> None:
        await self.deadlines.done(item_id)

    async def check(self) -> int:
        """Notify what is newly overdue and refresh the gauges; answers how many items were
        notified now."""
        now = self.clock()
        overdue: Counter[str] = Counter()
        notified = 0
        for doc in await self.deadlines.passed(now):
            item = await self.items.get(doc["_id"])
            if item is None or item.state != "open":
                await self.deadlines.done(doc["_id"])  # decided, its deadline left behind by a crash
                continue
            overdue[item.municipality] += 1
            if doc.get("notified_at") is None:
                await self._notify(item, now)
                notified += 1
        self._seen |= set(overdue)
        for municipality in self._seen:
            REVIEW_URGENT_OVERDUE.labels(municipality).set(overdue[municipality])
        await self._queue_age(now)
        return notified

    async def _notify(self, item: Item, now: datetime) -> None:
        config = self.config(item.municipality)
        with bound(message_id=item.id):
            # deterministic ids: a notice published again (a crash before it was marked)
            # is sent once by channels
            for person in config.on_duty:
                await self.notify(overdue_notice(item, person, config, now))
            told = [p.name for p in config.on_duty]
            await self.audit.record(
                item.id, OVERDUE_STAGE, {"on_duty": told, "at": now.isoformat()}, once=True
            )
            await self.deadlines.notified(item.id, now)
            if told:
                log.warning("urgent_item_overdue", item=item.id, on_duty=told)
            else:
                log.error("urgent_item_overdue_nobody_on_duty", item=item.id)

    async def _queue_age(self, now: datetime) -> None:
        for urgent, label in ((True, "urgent"), (False, "normal")):
            oldest = await self.items.oldest_open(urgent)
            self._seen |= set(oldest)
            for municipality in self._seen:
                since = oldest.get(municipality)
                REVIEW_QUEUE_AGE.labels(municipality, label).set(
                    max(0.0, (now - since).total_seconds()) if since else 0.0
                )

    async def keep_watching(self, every: float) -> None:
        """:meth:`check` every ``every`` seconds until cancelled."""
        while True:
            try:
                if notified := await self.check():
                    log.info("overdue_notified", count=notified)
            except Exception:  # the database or the broker is away: next time
                log.exception("deadline_check_failed")
            await asyncio.sleep(every)

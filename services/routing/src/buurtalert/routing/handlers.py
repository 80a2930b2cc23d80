"""Routing's handling of one approved message, apart from Kafka: the directory and
stores in, deliveries handed to ``publish``. The service wires it to its topics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from buurtalert.directory.store import Directories
from buurtalert.routing.rules import (
    Context,
    Incident,
    Route,
    UnknownGroup,
    already_told,
    is_urgent,
    route,
)
from buurtalert.routing.stores import GroupRates, Incidents
from buurtalert.shared.kafka import PermanentError
from buurtalert.shared.logging import bound, get_logger
from buurtalert.shared.models import Delivery, ModeratedMessage, utcnow
from buurtalert.shared.mongo import Audit
from buurtalert.shared.topics import ROUTING

log = get_logger(__name__)
Publish = Callable[[Delivery], Awaitable[None]]


def routing_record(decision: Route, incident_id: str) -> dict[str, Any]:
    """The audit entry of a routing decision: each delivery to a group, and a group
    reached member by member as one entry with its number of recipients (the
    members' pseudonyms are in the deliveries themselves)."""
    entries: dict[tuple[str | None, str, str], dict[str, Any]] = {}
    for d in decision.deliveries:
        destination = d.destination
        key = (destination.municipality, destination.group_id, destination.channel)
        entry = entries.setdefault(
            key,
            {
                "id": d.id,
                "group_id": destination.group_id,
                "municipality": destination.municipality,
                "channel": destination.channel,
                "rules": list(d.rules),
                "deliver_after": d.deliver_after.isoformat() if d.deliver_after else None,
            },
        )
        if destination.recipient is not None:
            entry["id"] = None
            entry["recipients"] = entry.get("recipients", 0) + 1
    return {"rules": list(decision.rules), "incident_id": incident_id, "deliveries": list(entries.values())}


class Router:
    """Routes one approved message: its incident, the rules, the deliveries, the audit."""

    def __init__(
        self,
        directories: Directories,
        incidents: Incidents,
        rates: GroupRates,
        audit: Audit,
        publish: Publish,
        channels: set[str],
    ) -> None:
        self.directories = directories
        self.incidents = incidents
        self.rates = rates
        self.audit = audit
        self.publish = publish
        self.channels = channels

    async def __call__(self, item: ModeratedMessage) -> None:
        """Route one message (a retry comes back alone)."""
        [failure] = await self.route_many([item])
        if failure is not None:
            raise failure

    async def route_many(self, items: list[ModeratedMessage]) -> list[BaseException | None]:
        """Route the messages of one key, in order: their directories and incidents looked
        up together, the groups each tells about its incident taken together (of two reports
        of one incident, one tells a group) while the rate-limited groups' counts are read
        and their incidents and memberships are written, then each routed and published in
        turn, then what each leaves behind (rate counts, closings, audit entries) written
        together. Answers, per message, None or why it failed (that message alone is retried)."""
        now = utcnow()
        prepared = await asyncio.gather(*(self._prepare(item, now) for item in items), return_exceptions=True)
        ready = [p for p in prepared if isinstance(p, _Prepared)]
        failures: dict[int, BaseException] = {
            n: p for n, p in enumerate(prepared) if isinstance(p, BaseException)
        }
        try:
            counts, tellers, *_ = await asyncio.gather(
                self._counts(ready, now),
                self.incidents.tell([(p.item.message.id, p.incident.id, sorted(p.groups)) for p in ready]),
                *{p.written for p in ready if p.written is not None},
            )
        except Exception as exc:  # every message of the key is retried
            return [failures.get(n, exc) for n in range(len(items))]
        routed: list[tuple[int, _Prepared, Route]] = []
        for n, p in enumerate(prepared):
            if not isinstance(p, _Prepared):
                continue
            try:
                decision = self._decide(p, counts, tellers.get(p.incident.id, {}))
                for delivery in decision.deliveries:
                    await self.publish(delivery)
            except Exception as exc:  # this message alone takes the retry path
                failures[n] = exc
                continue
            routed.append((n, p, decision))
        done = await asyncio.gather(*(self._record(p, d, now) for _, p, d in routed), return_exceptions=True)
        for (n, _, _), outcome in zip(routed, done, strict=True):
            if isinstance(outcome, BaseException):
                failures[n] = outcome
        return [failures.get(n) for n in range(len(items))]

    async def _prepare(self, item: ModeratedMessage, now: datetime) -> _Prepared:
        message = item.message
        directory = await self.directories.get(message.municipality)
        if directory is None:
            raise PermanentError(f"no directory for municipality {message.municipality!r}")
        partners = {
            a.partner: found for a in directory.agreements if (found := await self.directories.get(a.partner))
        }
        sender = directory.group(message.group_id) if message.group_id else None
        district = sender.district if sender else None
        closing = await self.incidents.containing(message.closes) if message.closes else None
        attached = None if closing else await self.incidents.attaching(message, district, directory)
        incident = closing or attached.incident  # type: ignore[union-attr]
        context = Context(
            directory=directory,
            partners=partners,
            now=now,
            incident_groups=closing.groups if closing else (),
            incident_id=incident.id,
        )
        try:
            decision = route(item, context)
        except UnknownGroup as exc:
            raise PermanentError(str(exc)) from exc
        for delivery in decision.deliveries:  # before it takes the telling of any group
            if delivery.destination.channel not in self.channels:
                raise PermanentError(f"no channel adapter topic for {delivery.destination.channel!r}")
        limited = frozenset(
            {d.destination.group_id for d in decision.deliveries}
            & {g.id for g in directory.groups if g.max_per_hour}
        )
        joined = bool(attached and attached.joined)
        written = attached.written if attached else None
        return _Prepared(item, context, incident, closing is not None, joined, limited, decision, written)

    async def _counts(self, ready: list[_Prepared], now: datetime) -> dict[str, int]:
        """This hour's deliveries to the rate-limited groups these messages go to."""
        limited = sorted(set().union(*(p.limited for p in ready)))
        return await self.rates.counts(limited, now) if limited else {}

    def _decide(self, p: _Prepared, counts: dict[str, int], tellers: dict[tuple[str, str], str]) -> Route:
        """The route with the rate limits as they stand after the messages before it,
        without the groups another report of the incident tells; counts what it delivers
        now to a rate-limited group."""
        decision = route(p.item, replace(p.context, recent=counts)) if p.limited else p.planned
        decision = already_told(decision, replace(p.incident, told=tellers), p.item.message.id)
        if not is_urgent(p.item):
            for group_id in sorted(p.counted(decision)):
                counts[group_id] = counts.get(group_id, 0) + 1
        return decision

    async def _record(self, p: _Prepared, decision: Route, now: datetime) -> None:
        message = p.item.message
        with bound(message_id=message.id):
            # The rate counts, the closing and the audit entry are separate documents, each
            # write idempotent, written at once: the message is committed only after all
            # three, so a crash between them has its redelivery write what is missing.
            writes: list[Awaitable[Any]] = [
                self.audit.record(message.id, ROUTING, routing_record(decision, p.incident.id))
            ]
            if p.closing:
                writes.append(self.incidents.close(p.incident, message.id, now))
            if not is_urgent(p.item):
                writes.append(self.rates.count(sorted(p.counted(decision)), message.id, now))
            await asyncio.gather(*writes)
            log.info(
                "routed",
                deliveries=len(decision.deliveries),
                rules=list(decision.rules),
                incident_id=p.incident.id,
                joined=p.joined,
            )


@dataclass(frozen=True)
class _Prepared:
    """A message with what routing looked up for it: its context and incident."""

    item: ModeratedMessage
    context: Context
    incident: Incident
    closing: bool
    joined: bool
    #: The rate-limited groups its route goes to.
    limited: frozenset[str]
    #: Its route before the rate limits: the groups it tells about its incident.
    planned: Route
    #: Done once its incident and membership are stored (awaited before it is published).
    written: Awaitable[Any] | None = None

    @property
    def groups(self) -> set[tuple[str, str]]:
        """The groups its route tells about its incident: (municipality, group id)."""
        return {
            (d.destination.municipality or self.item.message.municipality, d.destination.group_id)
            for d in self.planned.deliveries
        }

    def counted(self, decision: Route) -> set[str]:
        """The rate-limited groups ``decision`` delivers to now (not held)."""
        return {
            d.destination.group_id
            for d in decision.deliveries
            if d.deliver_after is None and d.destination.group_id in self.limited
        }

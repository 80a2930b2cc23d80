"""Routing's handling of one approved message, apart from Kafka: the directory and
stores in, deliveries handed to ``publish``. The service wires it to its topics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from buurtalert.directory.store import Directories
from buurtalert.routing.rules import Context, Route, UnknownGroup, is_urgent, route
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
        message = item.message
        with bound(message_id=message.id):
            directory = await self.directories.get(message.municipality)
            if directory is None:
                raise PermanentError(f"no directory for municipality {message.municipality!r}")
            partners = {
                a.partner: found
                for a in directory.agreements
                if (found := await self.directories.get(a.partner))
            }
            sender = directory.group(message.group_id) if message.group_id else None
            district = sender.district if sender else None
            now = utcnow()
            closing = await self.incidents.containing(message.closes) if message.closes else None
            incident = closing or await self.incidents.attach(message, district, directory)
            limited = [g.id for g in directory.groups if g.max_per_hour]
            context = Context(
                directory=directory,
                partners=partners,
                now=now,
                recent=await self.rates.counts(limited, now) if limited else {},
                incident_groups=closing.groups if closing else (),
                incident_id=incident.id,
            )
            try:
                decision = route(item, context)
            except UnknownGroup as exc:
                raise PermanentError(str(exc)) from exc
            urgent = is_urgent(item)
            counted: set[str] = set()
            for delivery in decision.deliveries:
                if delivery.destination.channel not in self.channels:
                    raise PermanentError(f"no channel adapter topic for {delivery.destination.channel!r}")
                await self.publish(delivery)
                group_id = delivery.destination.group_id
                if (
                    not urgent
                    and delivery.deliver_after is None
                    and group_id in limited
                    and group_id not in counted
                ):
                    await self.rates.count(group_id, message.id, now)
                    counted.add(group_id)
            reached = {
                (d.destination.municipality or message.municipality, d.destination.group_id)
                for d in decision.deliveries
            }
            await self.incidents.reached(incident.id, sorted(reached))
            if closing is not None:
                await self.incidents.close(closing.id, message.id, now)
            await self.audit.record(message.id, ROUTING, routing_record(decision, incident.id))
            log.info(
                "routed",
                deliveries=len(decision.deliveries),
                rules=list(decision.rules),
                incident_id=incident.id,
            )

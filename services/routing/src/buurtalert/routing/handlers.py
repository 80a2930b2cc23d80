"""Routing's handling of one approved message, apart from Kafka: the directory and
stores in, deliveries handed to ``publish``. The service wires it to its topics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from buurtalert.directory.store import Directories
from buurtalert.routing.rules import Context, Route, UnknownGroup, already_told, is_urgent, route
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
            attached = None if closing else await self.incidents.attach(message, district, directory)
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
                # The rate limits of the groups this message goes to, then the route with them.
                limited = sorted(
                    {d.destination.group_id for d in decision.deliveries}
                    & {g.id for g in directory.groups if g.max_per_hour}
                )
                if limited:
                    counts = await self.rates.counts(limited, now)
                    decision = route(item, replace(context, recent=counts))
            except UnknownGroup as exc:
                raise PermanentError(str(exc)) from exc
            if attached is not None and attached.joined:
                decision = already_told(decision, attached.incident, message.id)
            for delivery in decision.deliveries:
                if delivery.destination.channel not in self.channels:
                    raise PermanentError(f"no channel adapter topic for {delivery.destination.channel!r}")
            for delivery in decision.deliveries:
                await self.publish(delivery)
            if not is_urgent(item):
                counted = {
                    d.destination.group_id
                    for d in decision.deliveries
                    if d.deliver_after is None and d.destination.group_id in limited
                }
                await self.rates.count(sorted(counted), message.id, now)
            reached = {
                (d.destination.municipality or message.municipality, d.destination.group_id)
                for d in decision.deliveries
            }
            await self.incidents.reached(incident.id, sorted(reached), message.id)
            if closing is not None:
                await self.incidents.close(closing, message.id, now)
            await self.audit.record(message.id, ROUTING, routing_record(decision, incident.id))
            log.info(
                "routed",
                deliveries=len(decision.deliveries),
                rules=list(decision.rules),
                incident_id=incident.id,
                joined=bool(attached and attached.joined),
            )

"""The routing service: messages.approved → deliveries.<channel>."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from faststream import FastStream
from pymongo.asynchronous.database import AsyncDatabase

from buurtalert.directory.store import Directories
from buurtalert.routing.incidents import Incidents
from buurtalert.routing.rules import Context, Route, UnknownGroup, is_urgent, route
from buurtalert.shared.kafka import PermanentError, Reliable, create_broker, topic_publisher
from buurtalert.shared.logging import APP_LOGGER, bound, get_logger
from buurtalert.shared.models import ModeratedMessage, utcnow
from buurtalert.shared.mongo import Audit, mongo_client
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import DELIVERY_TOPICS, MESSAGES_APPROVED, ROUTING, delivery_topic

log = get_logger(__name__)


class GroupRates:
    """Non-urgent messages delivered per group and hour, counted idempotently by message id."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._rates = db.group_rates

    @staticmethod
    def _key(group_id: str, at: datetime) -> str:
        return f"{group_id}:{at:%Y%m%d%H}"

    async def counts(self, group_ids: list[str], at: datetime) -> dict[str, int]:
        keys = {self._key(g, at): g for g in group_ids}
        cursor = self._rates.find({"_id": {"$in": list(keys)}})
        return {keys[doc["_id"]]: len(doc["messages"]) async for doc in cursor}

    async def count(self, group_id: str, message_id: str, at: datetime) -> None:
        await self._rates.update_one(
            {"_id": self._key(group_id, at)}, {"$addToSet": {"messages": message_id}}, upsert=True
        )


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


def create_app(settings: Settings) -> FastStream:
    broker = create_broker(settings, ROUTING)
    reliable = Reliable(broker, settings, ROUTING)
    db = mongo_client(settings)[settings.database]
    audit = Audit(db)
    directories = Directories(db)
    incidents = Incidents(db)
    rates = GroupRates(db)
    # Built-in channels, and the partner adapters this deployment's municipality file configures.
    channels = set(DELIVERY_TOPICS) | set(load_municipality_config(settings.municipality_file).channels)
    publishers = {
        channel: topic_publisher(broker, settings, delivery_topic(channel)) for channel in sorted(channels)
    }

    @reliable.subscriber(MESSAGES_APPROVED)
    async def route_message(item: ModeratedMessage) -> None:
        message = item.message
        with bound(message_id=message.id):
            directory = await directories.get(message.municipality)
            if directory is None:
                raise PermanentError(f"no directory for municipality {message.municipality!r}")
            partners = {
                a.partner: found for a in directory.agreements if (found := await directories.get(a.partner))
            }
            sender = directory.group(message.group_id) if message.group_id else None
            district = sender.district if sender else None
            now = utcnow()
            closing = await incidents.containing(message.closes) if message.closes else None
            incident = closing or await incidents.attach(message, district, directory)
            limited = [g.id for g in directory.groups if g.max_per_hour]
            context = Context(
                directory=directory,
                partners=partners,
                now=now,
                recent=await rates.counts(limited, now) if limited else {},
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
                publisher = publishers.get(delivery.destination.channel)
                if publisher is None:
                    raise PermanentError(f"no channel adapter topic for {delivery.destination.channel!r}")
                await reliable.publish(publisher, delivery, key=delivery.destination.key.encode())
                group_id = delivery.destination.group_id
                if (
                    not urgent
                    and delivery.deliver_after is None
                    and group_id in limited
                    and group_id not in counted
                ):
                    await rates.count(group_id, message.id, now)
                    counted.add(group_id)
            reached = {
                (d.destination.municipality or message.municipality, d.destination.group_id)
                for d in decision.deliveries
            }
            await incidents.reached(incident.id, sorted(reached))
            if closing is not None:
                await incidents.close(closing.id, message.id, now)
            await audit.record(message.id, ROUTING, routing_record(decision, incident.id))
            log.info(
                "routed",
                deliveries=len(decision.deliveries),
                rules=list(decision.rules),
                incident_id=incident.id,
            )

    app = FastStream(broker, logger=APP_LOGGER)
    reliable.attach(app)
    return app

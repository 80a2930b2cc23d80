"""An incident's outcome told to every group it reached (``incidents.outcomes`` →
``deliveries.<channel>``), in each group's language, through the same destinations as
the incident's messages (a group reached member by member: each consenting member).

Idempotent by incident: an outcome's id comes from its incident, and each delivery's id
from the outcome and the destination, so handling the outcome again publishes the same
deliveries, which channels sends once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from buurtalert.directory.model import Directory
from buurtalert.directory.store import Directories
from buurtalert.routing.rules import Context, _destinations, _held_until, _Target
from buurtalert.routing.stores import Incidents
from buurtalert.shared.kafka import PermanentError
from buurtalert.shared.logging import bound, get_logger
from buurtalert.shared.models import Delivery, IncidentOutcome, stable_id, utcnow
from buurtalert.shared.mongo import Audit
from buurtalert.shared.texts import line
from buurtalert.shared.topics import ROUTING

log = get_logger(__name__)
Publish = Callable[[Delivery], Awaitable[None]]
RULE = "incident_outcome"


def outcome_text(outcome: IncidentOutcome, language: str, timezone: str) -> str:
    """The outcome in ``language``: when the report came, what came of it, the note (as
    written: free text is never translated) and thanks. It never quotes the report."""
    lines = []
    if outcome.reported_at is not None:
        reported = outcome.reported_at.astimezone(ZoneInfo(timezone)).strftime("%d-%m-%Y %H:%M")
        lines.append(line("outcome.intro", language, reported=reported))
    lines.append(line(f"outcome.{outcome.outcome.value}", language))
    if outcome.note:
        lines.append(line("outcome.note", language, note=outcome.note))
    lines.append(line("outcome.thanks", language))
    return "\n".join(lines)


def outcome_deliveries(
    outcome: IncidentOutcome,
    groups: tuple[tuple[str, str], ...],
    directory: Directory,
    partners: Mapping[str, Directory],
    now: datetime,
) -> tuple[list[Delivery], list[str]]:
    """One delivery per destination of each group the incident reached (groups of a
    partner municipality through the partner's directory, in the language the partner's
    group reads); and notes on the groups no longer found."""
    own = directory.municipality.id
    deliveries: list[Delivery] = []
    notes: list[str] = []
    for municipality, group_id in groups:
        home = directory if municipality == own else partners.get(municipality)
        group = home.group(group_id) if home else None
        if home is None or group is None:
            notes.append(f"group_gone:{municipality}/{group_id}")
            continue
        language = group.language or home.municipality.language
        target = _Target(group, municipality, [RULE], None, language)
        rules = [RULE]
        held = _held_until(group, Context(directory=home, now=now), rules, home)
        text = outcome_text(outcome, language, home.municipality.timezone)
        for destination in _destinations(target, home):
            deliveries.append(
                Delivery(
                    id=stable_id(
                        "dlv",
                        outcome.id,
                        destination.group_id,
                        destination.channel,
                        *filter(None, [destination.recipient]),
                    ),
                    message_id=outcome.id,
                    municipality=outcome.municipality,
                    destination=destination,
                    text=text,
                    rules=tuple(rules),
                    language=language,
                    subject=line("outcome.subject", language),
                    incident_id=outcome.incident_id,
                    deliver_after=held,
                )
            )
    return deliveries, notes


class OutcomeFeedback:
    """Tells the groups an incident reached what came of it, and marks it fed back."""

    def __init__(
        self,
        directories: Directories,
        incidents: Incidents,
        audit: Audit,
        publish: Publish,
        channels: set[str],
    ) -> None:
        self.directories = directories
        self.incidents = incidents
        self.audit = audit
        self.publish = publish
        self.channels = channels

    async def __call__(self, outcome: IncidentOutcome) -> None:
        with bound(incident_id=outcome.incident_id):
            directory = await self.directories.get(outcome.municipality)
            if directory is None:
                raise PermanentError(f"no directory for municipality {outcome.municipality!r}")
            incident = await self.incidents.containing(outcome.incident_id)
            if incident is None:
                raise PermanentError(f"no incident {outcome.incident_id!r}")
            partners = {
                m: found
                for m in {m for m, _ in incident.groups if m != directory.municipality.id}
                if (found := await self.directories.get(m))
            }
            now = utcnow()
            deliveries, notes = outcome_deliveries(outcome, incident.groups, directory, partners, now)
            for delivery in deliveries:
                if delivery.destination.channel not in self.channels:
                    raise PermanentError(f"no channel adapter topic for {delivery.destination.channel!r}")
                await self.publish(delivery)
            await self.incidents.fed_back(
                incident.id, outcome.id, outcome.outcome.value, now, told=bool(deliveries)
            )
            await self.audit.record(
                outcome.id,
                ROUTING,
                {
                    "incident_id": incident.id,
                    "outcome": outcome.outcome.value,
                    "rules": [RULE, *notes],
                    "deliveries": [
                        {"id": d.id, "group_id": d.destination.group_id, "channel": d.destination.channel}
                        for d in deliveries
                    ],
                },
            )
            log.info("outcome_fed_back", deliveries=len(deliveries), outcome=outcome.outcome.value)

"""Giving an incident its outcome, apart from Kafka and HTTP: in the console, by the web
API, or by a reply in the regiegroep (an :class:`OutcomeCommand` ingest read). An outcome
is recorded once per incident (``incident_outcomes``) and published on
``incidents.outcomes``, which routing turns into a message to every group the incident
reached. A command from someone who may not give it is kept in the audit trail with the
reason, never applied."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from buurtalert.directory.store import Directories
from buurtalert.review.effect.rules import (
    MAX_NOTE,
    IncidentView,
    command_refusal,
    incident_districts,
    may_give_outcome,
    outcome_id,
)
from buurtalert.review.effect.stores import IncidentsView, Outcomes
from buurtalert.review.rules import User
from buurtalert.shared.logging import get_logger
from buurtalert.shared.models import IncidentOutcome, OutcomeCommand, OutcomeKind, Role
from buurtalert.shared.mongo import Audit

log = get_logger(__name__)
Publish = Callable[[IncidentOutcome], Awaitable[None]]
#: The audit stage of an outcome given or refused (under the command's or the incident's id).
STAGE = "review.outcome"


@dataclass(frozen=True, slots=True)
class Given:
    """What became of an attempt to give an outcome: the outcome (new or the incident's
    earlier one), or why not (``refused``: ``forbidden``, ``not_found``, ``invalid`` or
    ``already_given``)."""

    outcome: IncidentOutcome | None
    refused: Literal["forbidden", "not_found", "invalid", "already_given"] | None = None
    detail: str = ""


class OutcomeDesk:
    def __init__(
        self,
        outcomes: Outcomes,
        incidents: IncidentsView,
        directories: Directories,
        audit: Audit,
        publish: Publish,
    ) -> None:
        self.outcomes = outcomes
        self.incidents = incidents
        self.directories = directories
        self.audit = audit
        self.publish = publish

    async def _districts(self, user: User) -> tuple[str, ...] | None:
        return incident_districts(user, await self.directories.get(user.municipality))

    async def incident(self, user: User, ref: str) -> IncidentView | None:
        """The incident ``ref`` if it is of the user's municipality and within their scope
        (a coordinator's groups' districts, a wijkagent's districts); else None, as missing."""
        found = await self.incidents.containing(ref, user.municipality)
        if found is None or found.municipality != user.municipality:
            return None
        districts = await self._districts(user)
        return found if districts is None or found.district in districts else None

    async def recent(self, user: User) -> list[IncidentView]:
        """The latest incidents the user sees (read per district for a scoped user)."""
        return await self.incidents.recent(user.municipality, await self._districts(user))

    async def give(
        self,
        user: User,
        ref: str,
        outcome: OutcomeKind | None,
        note: str,
        source: Literal["console", "api"],
    ) -> Given:
        """A console user gives incident ``ref`` its outcome."""
        if not may_give_outcome(user.role):
            return Given(None, "forbidden")
        incident = await self.incident(user, ref)
        if incident is None:
            return Given(None, "not_found")
        if outcome is None or len(note) > MAX_NOTE:
            return Given(None, "invalid", "outcome" if outcome is None else "note too long")
        return await self._record(
            incident,
            IncidentOutcome(
                id=outcome_id(incident.id),
                incident_id=incident.id,
                municipality=incident.municipality,
                district=incident.district,
                outcome=outcome,
                note=note.strip(),
                actor=user.name,
                actor_role=user.role,
                source=source,
                reported_at=incident.opened_at,
            ),
        )

    async def command(self, command: OutcomeCommand) -> Given:
        """A reply in a regiegroep: applied if its sender may give it, else kept with the reason."""
        incident = (
            await self.incidents.containing(command.incident_ref, command.municipality)
            if command.incident_ref
            else None
        )
        directory = await self.directories.get(command.municipality)
        refusal = command_refusal(command, directory, incident)
        if refusal is not None or incident is None or command.outcome is None:
            reason = refusal or "unknown incident"
            await self.audit.record(
                command.id,
                STAGE,
                {"refused": reason, "group_id": command.group_id, "incident_ref": command.incident_ref},
            )
            log.warning("outcome_command_refused", command_id=command.id, reason=reason)
            return Given(None, "forbidden", reason)
        member = directory.member(command.author.pseudonym) if directory else None
        return await self._record(
            incident,
            IncidentOutcome(
                id=outcome_id(incident.id),
                incident_id=incident.id,
                municipality=incident.municipality,
                district=incident.district,
                outcome=command.outcome,
                note=command.note,
                actor=member.id if member else command.author.pseudonym,
                actor_role=member.role if member else Role.UNKNOWN,
                source="regiegroep",
                command_id=command.id,
                reported_at=incident.opened_at,
                decided_at=command.sent_at,
            ),
            command_id=command.id,
        )

    async def _record(
        self, incident: IncidentView, outcome: IncidentOutcome, command_id: str | None = None
    ) -> Given:
        """Record and publish; an incident that has its outcome already keeps it. The same
        attempt again (a redelivered command, the same user again) publishes the recorded
        outcome again if it was not confirmed, so nothing is lost and routing sends once."""
        if await self.outcomes.add(outcome):
            await self.publish(outcome)
            await self.outcomes.published(incident.id)
            await self.audit.record(
                command_id or incident.id,
                STAGE,
                {"outcome": outcome.outcome.value, "incident_id": incident.id, "actor": outcome.actor},
            )
            log.info("outcome_given", incident_id=incident.id, outcome=outcome.outcome.value)
            return Given(outcome)
        earlier = await self.outcomes.get(incident.id)
        if earlier is not None and (earlier.actor, earlier.command_id, earlier.outcome) == (
            outcome.actor,
            outcome.command_id,
            outcome.outcome,
        ):
            await self.publish(earlier)  # a repeat of the same attempt: make sure it went out
            await self.outcomes.published(incident.id)
            return Given(earlier)
        if command_id is not None:
            await self.audit.record(
                command_id,
                STAGE,
                {"refused": "the incident has an outcome already", "incident_id": incident.id},
            )
        return Given(earlier, "already_given")

"""The one path of every lane: :meth:`Intake.take` resolves the directory, parses,
and either quarantines the input with the reason (:class:`Refused`) or accepts what
the parser produced (:class:`Accepted`): deduplicate, archive the raw input, publish,
record. Every lane ends here, so every lane behaves the same way; a lane only
translates the outcome into its protocol.

Order matters for "nothing lost": the raw input is archived and every record is
confirmed by Kafka *before* the message is marked as handled (its ``ingest`` stage in
the audit trail) and before the provider hears 200. A crash in between means the
provider retries and the message is published again under the same id, which
moderation absorbs. Records go out through the message path's :class:`Sender`; statuses
through a sender of their own, so a burst of them never queues in front of messages."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from buurtalert.ingest.parsers.commands import outcome_command
from buurtalert.ingest.parsers.common import Batch, InvalidInput, MembershipRequest, Parse, Resolver
from buurtalert.ingest.stores import IngestStores, MediaFile
from buurtalert.shared.kafka import Sender, topic_publisher
from buurtalert.shared.logging import bound, get_logger
from buurtalert.shared.models import (
    InboundMessage,
    MembershipDecision,
    Quarantined,
    ReviewAction,
    ReviewDecision,
    SourceChannel,
    stable_id,
)
from buurtalert.shared.settings import MunicipalityConfig, Settings
from buurtalert.shared.topics import (
    INGEST,
    INGEST_MEDIA,
    INGEST_OUTCOME_COMMANDS,
    INGEST_POLL_ANSWERS,
    INGEST_QUARANTINE,
    MESSAGES_INBOUND,
    MESSAGES_REACTIONS,
    PROVIDER_STATUS,
)

log = get_logger(__name__)

#: Inputs larger than this are parsed in a thread, off the event loop.
THREAD_ABOVE = 64 * 1024
#: Kafka refuses records over its message.max.bytes (1 MB by default): a record larger
#: than this is refused with the reason rather than retried for ever.
MAX_RECORD_BYTES = 900 * 1024
#: How much of a refused input goes onto ingest.quarantine (``size`` says how much there was).
QUARANTINE_MAX_BYTES = 256 * 1024


def oversized(batch: Batch) -> None:
    """Raise :class:`InvalidInput` (413) if a record of ``batch`` is too large for Kafka."""
    records: list[BaseModel] = [*batch.messages, *batch.reactions, *batch.statuses, *batch.media]
    for record in records:
        size = len(record.model_dump_json())
        if size > MAX_RECORD_BYTES:
            raise InvalidInput(
                f"a {type(record).__name__} of {size} bytes is larger than the "
                f"{MAX_RECORD_BYTES} a record may be",
                413,
            )


@dataclass(frozen=True, slots=True)
class Outcome:
    accepted: int
    duplicates: int
    statuses: int
    reactions: int
    memberships: int
    ignored: int
    poll_answers: int = 0

    def as_json(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "statuses": self.statuses,
            "reactions": self.reactions,
            "memberships": self.memberships,
            "ignored": self.ignored,
            "poll_answers": self.poll_answers,
        }


@dataclass(frozen=True, slots=True)
class Accepted:
    """The input was parsed and accepted: what it yielded, and what became of it."""

    batch: Batch
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Refused:
    """The input was refused and quarantined: the reason (safe to tell the sender),
    the status it deserves (HTTP; SMTP maps it) and the quarantine id."""

    reason: str
    status: int
    quarantine_id: str


class Intake:
    """Takes input from every lane."""

    def __init__(
        self,
        broker: KafkaBroker,
        settings: Settings,
        stores: IngestStores,
        municipality: MunicipalityConfig,
        *,
        sender: Sender,
        status_sender: Sender,
    ) -> None:
        """``broker`` documents the topics ingest publishes (AsyncAPI); ``sender`` and
        ``status_sender`` publish (started and stopped by the caller)."""
        self.municipality = municipality
        self.stores = stores
        #: AANMELDEN attempts per number: codes cannot be tried one after another
        self.join_attempts = Attempts()
        self.directories = stores.directories
        self._inbound = topic_publisher(broker, settings, MESSAGES_INBOUND)
        self._quarantine = topic_publisher(broker, settings, INGEST_QUARANTINE)
        self._reactions = topic_publisher(broker, settings, MESSAGES_REACTIONS)
        self._media = topic_publisher(broker, settings, INGEST_MEDIA)
        self._commands = topic_publisher(broker, settings, INGEST_OUTCOME_COMMANDS)
        self._poll_answers = topic_publisher(broker, settings, INGEST_POLL_ANSWERS)
        self._statuses = topic_publisher(broker, settings, PROVIDER_STATUS)
        self._sender, self._status_sender = sender, status_sender

    async def resolver(self) -> Resolver:
        """The municipality's resolver, with its current directory (cached briefly)."""
        return Resolver(self.municipality, await self.directories.get(self.municipality.id))

    async def take(
        self,
        source: str,
        raw: bytes,
        parse: Parse,
        *,
        content_type: str | None = None,
        stored: bytes | None = None,
    ) -> Accepted | Refused:
        """Parse ``raw`` with the current directory; quarantine it when the parser
        refuses it (:class:`InvalidInput`), accept what it yields otherwise. A failure
        of our own (Kafka, the database) raises: the lane answers "try again".
        ``stored`` is what to archive or quarantine instead of ``raw`` (the form's body
        without its access code): a secret is never kept."""
        kept = raw if stored is None else stored
        resolver = await self.resolver()
        try:
            # a large input may take a while to parse: not on the event loop, which serves every lane
            if len(raw) > THREAD_ABOVE:
                batch = await asyncio.to_thread(parse, raw, resolver)
            else:
                batch = parse(raw, resolver)
            oversized(batch)
        except InvalidInput as exc:
            reason = str(exc)
            return Refused(reason, exc.status, await self.quarantine(source, kept, reason, content_type))
        except Exception as exc:  # a parser is pure: whatever it raises, the input caused
            log.exception("parser_failed", source=source)
            reason = f"input could not be read ({type(exc).__name__})"
            return Refused(reason, 422, await self.quarantine(source, kept, reason, content_type))
        one = batch.messages[0].id if len(batch.messages) == 1 else None
        with bound(message_id=one) if one else contextlib.nullcontext():
            outcome = await self.accept(batch, source=source, body=kept, content_type=content_type)
        return Accepted(batch, outcome)

    async def quarantine(self, source: str, body: bytes, reason: str, content_type: str | None) -> str:
        """Keep input we cannot accept, with the reason; returns the quarantine id."""
        kept = body[:QUARANTINE_MAX_BYTES]
        record = Quarantined(
            id=stable_id("qua", source, hashlib.sha256(body).hexdigest(), reason),
            source=source,
            reason=reason,
            content_type=content_type,
            body=kept.decode("utf-8", "replace"),
            size=len(body),
            truncated=len(kept) < len(body),
        )
        await (await self._sender.send(self._quarantine.topic, record, key=source.encode()))
        log.warning("input_quarantined", source=source, reason=reason, quarantine_id=record.id)
        return record.id

    async def handled(self, ids: Iterable[str]) -> set[str]:
        """Which of these message ids ingest accepted before (see :meth:`IngestStores.handled`)."""
        return await self.stores.handled(ids)

    async def accept(self, batch: Batch, *, source: str, body: bytes, content_type: str | None) -> Outcome:
        """Deduplicate, archive, publish and record what a parser produced."""
        statuses = [
            self._status_sender.send(self._statuses.topic, s, key=s.provider_message_id.encode())
            for s in batch.statuses
        ]
        status_confirms = await asyncio.gather(*statuses)

        async def archive() -> None:
            if batch.messages or batch.reactions or batch.memberships or batch.ignored or batch.poll_answers:
                await self.stores.archive_raw(batch.raw_ref, source, body, content_type)
            for file in batch.attachments:
                await self.stores.store_media(
                    MediaFile(
                        storage_ref=file.storage_ref,
                        message_id=file.message_id,
                        channel=SourceChannel.EMAIL.value,
                        data=file.data,
                        mime_type=file.mime_type,
                        declared_type=file.declared_type,
                        filename=file.filename,
                    )
                )

        done, _ = await asyncio.gather(self.handled(m.id for m in batch.messages), archive())
        fresh = [m for m in batch.messages if m.id not in done]
        # A reply that gives an incident its outcome is a command for the review service, not a report.
        commands = {m.id: c for m in fresh if (c := outcome_command(m)) is not None}

        send = self._sender.send
        confirms = [
            *[await send(self._inbound.topic, m, key=m.partition_key) for m in fresh if m.id not in commands],
            *[
                await send(self._commands.topic, c, key=(c.group_id or c.id).encode())
                for c in commands.values()
            ],
            *[
                await send(self._media.topic, f, key=f.message_id.encode())
                for f in batch.media
                if f.message_id not in done
            ],
            *[
                await send(self._reactions.topic, r, key=(r.group_id or r.id).encode())
                for r in batch.reactions
            ],
            *[await send(self._poll_answers.topic, a, key=a.poll_id.encode()) for a in batch.poll_answers],
        ]
        await asyncio.gather(*confirms, *status_confirms)

        for request in batch.memberships:
            await self._apply(request, batch.raw_ref)
        for ignored in batch.ignored:
            await self.stores.record(
                stable_id("ign", source, ignored.provider_id),
                INGEST,
                {"channel": source, "ignored": ignored.reason, "raw_ref": batch.raw_ref},
            )
        await asyncio.gather(
            *(self._record(message, batch.contacts, command=message.id in commands) for message in fresh)
        )
        outcome = Outcome(
            accepted=len(fresh),
            duplicates=len(batch.messages) - len(fresh),
            statuses=len(batch.statuses),
            reactions=len(batch.reactions),
            memberships=len(batch.memberships),
            ignored=len(batch.ignored),
            poll_answers=len(batch.poll_answers),
        )
        if fresh or outcome.duplicates or batch.memberships or batch.ignored or batch.poll_answers:
            log.info("input_accepted", source=source, **outcome.as_json())
        return outcome

    async def _record(
        self, message: InboundMessage, contacts: dict[str, tuple[str, str]], *, command: bool = False
    ) -> None:
        """The author's address (for feedback) and the ``ingest`` stage, which marks
        the message as handled (``command``: an outcome command, on ingest.outcome-commands)."""
        contact = contacts.get(message.author.pseudonym)
        if contact:
            await self.stores.remember_contact(self.municipality.id, message.author.pseudonym, *contact)
        await self.stores.record(
            message.id,
            INGEST,
            {
                "channel": message.provider.channel,
                "raw_ref": message.raw_ref,
                "group_id": message.group_id,
                "flags": list(message.flags),
                "author_role": message.author.role.value,
                **({"command": "outcome"} if command else {}),
            },
            once=True,
        )

    async def _apply(self, request: MembershipRequest, raw_ref: str) -> None:
        """A join asks (PENDING until a coordinator approves it); STOP leaves at once.
        An event older than the last one applied does nothing (a replayed AANMELDEN
        after STOP); join attempts are limited per number."""
        municipality = self.municipality.id
        if request.action == "leave":
            applied = await self.stores.leave(municipality, request.pseudonym, request.at)
            outcome = "left" if applied else "ignored: older than the member's last change"
        elif not self.join_attempts.allow(request.pseudonym):
            outcome = "refused: too many join attempts"
        elif request.group_id is None:
            outcome = "unknown code"  # never echo the code: it may be someone's guess at a real one
        else:
            applied = await self.stores.join(
                municipality, request.pseudonym, request.address, request.group_id, request.at
            )
            outcome = (
                f"join of {request.group_id} awaits approval"
                if applied
                else "ignored: older than the member's last change"
            )
        self.directories.forget(municipality)
        await self.stores.record(
            stable_id("mbr", request.provider_message_id),
            INGEST,
            {"channel": "whatsapp", "membership": outcome, "member": request.pseudonym, "raw_ref": raw_ref},
        )
        log.info("membership_changed", outcome=outcome, member=request.pseudonym)


async def apply_membership_decision(stores: IngestStores, decision: MembershipDecision) -> None:
    """A coordinator's approval or refusal of a pending join (``review.memberships``),
    applied to the membership register, which ingest owns; recorded in the audit trail
    under the decision's id with who and why. Applying it again changes nothing."""
    with bound(decision_id=decision.id):
        applied = await stores.vet(decision)
        await stores.record(
            decision.id,
            "membership_vetting",
            {
                "member": decision.member,
                "group_id": decision.group_id,
                "approved": decision.approved,
                "actor": decision.actor,
                "actor_role": decision.actor_role.value,
                "reason": decision.reason,
                "applied": applied,
            },
            once=True,
        )
        log.info("membership_vetted", approved=decision.approved, group=decision.group_id, applied=applied)


async def apply_removal(stores: IngestStores, decision: ReviewDecision) -> None:
    """A removal two admins or coordinators agreed to (``moderation.decisions``,
    ``remove_member``), applied to the membership register, which ingest owns; other
    decisions are moderation's. A member known only from the directory file is left to the
    operator (recorded as not applied)."""
    proposal = decision.proposal
    if decision.action is not ReviewAction.REMOVE_MEMBER or proposal is None or proposal.group_id is None:
        return
    with bound(decision_id=decision.id):
        applied = await stores.remove_member(
            decision.municipality, proposal.member, proposal.group_id, decision.decided_at
        )
        entry: dict[str, object] = {
            "member": proposal.member,
            "group_id": proposal.group_id,
            "agreed_by": list(decision.agreed_by),
            "applied": bool(applied),
        }
        if applied is None:
            entry["why"] = "not in the membership register: remove the member from the directory file"
        await stores.record(decision.subject_id, "membership_removal", entry, once=True)
        log.info("member_removed" if applied else "member_removal_not_applied", applied=applied)


class Attempts:
    """At most ``limit`` attempts per key in ``window`` seconds (in this process's memory)."""

    def __init__(
        self, limit: int = 5, window: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._seen: dict[str, list[float]] = {}

    def allow(self, key: str) -> bool:
        now = self.clock()
        recent = [t for t in self._seen.get(key, []) if now - t < self.window]
        if len(recent) >= self.limit:
            self._seen[key] = recent
            return False
        self._seen[key] = [*recent, now]
        if len(self._seen) > 100_000:  # bounded: forget the quiet ones
            self._seen = {k: v for k, v in self._seen.items() if v and now - v[-1] < self.window}
        return True

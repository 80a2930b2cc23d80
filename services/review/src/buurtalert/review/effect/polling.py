"""Running a district poll, apart from Kafka and the command line: creating it (who is
invited, the poll kept in ``polls``), sending the invitations (on ``review.notices``,
which channels sends once each, so sending again is harmless) and counting the answers
ingest read (``ingest.poll-answers``): one per member, a later one replacing it; one that
does not count is kept in the audit trail with the reason."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from buurtalert.directory.model import Directory
from buurtalert.review.effect.polls import (
    Invitee,
    Poll,
    PollDraft,
    answer_refusal,
    district_problems,
    invitation,
    invitees,
    new_poll,
)
from buurtalert.review.effect.stores import Polls
from buurtalert.shared.logging import get_logger
from buurtalert.shared.models import Delivery, PollAnswer
from buurtalert.shared.mongo import Audit
from buurtalert.shared.settings import MunicipalityConfig

log = get_logger(__name__)
#: The audit stage of an answer that did not count (under the answer's id).
REFUSED_STAGE = "review.poll_answer_refused"
Notify = Callable[[Delivery], Awaitable[None]]


class PollProblem(ValueError):
    """A poll that cannot be sent as asked; ``str`` says why."""


@dataclass(frozen=True, slots=True)
class Sent:
    poll: Poll
    invitations: int
    by_channel: dict[str, int]


def plan(
    draft: PollDraft, directory: Directory, config: MunicipalityConfig, now: datetime, created_by: str
) -> tuple[Poll, list[Invitee]]:
    """The poll and whom it invites; :class:`PollProblem` when it cannot be sent."""
    if problems := district_problems(draft, directory):
        raise PollProblem("; ".join(problems))
    if config.ingest.public_url is None:
        raise PollProblem(
            "the municipality file has no ingest.public_url: invitations link to ingest's answer form"
        )
    invited = invitees(directory, draft.districts, set(config.channels))
    if not invited:
        raise PollProblem("no member of these districts consented to one-to-one messages")
    return new_poll(draft, invited, now, created_by), invited


async def send(
    poll: Poll, invited: list[Invitee], config: MunicipalityConfig, name: str, notify: Notify
) -> Sent:
    """Publish every invitation (deterministic ids: a second run reaches no one twice)."""
    assert config.ingest.public_url is not None
    by_channel: dict[str, int] = {}
    deliveries = [invitation(poll, i, config.pseudonym_key, config.ingest.public_url, name) for i in invited]
    for start in range(0, len(deliveries), 500):
        await asyncio.gather(*(notify(d) for d in deliveries[start : start + 500]))
    for invitee in invited:
        by_channel[invitee.channel] = by_channel.get(invitee.channel, 0) + 1
    return Sent(poll, len(deliveries), by_channel)


class PollBox:
    """Counts the answers to the municipality's polls."""

    def __init__(self, polls: Polls, audit: Audit) -> None:
        self.polls = polls
        self.audit = audit
        self._known: dict[str, Poll | None] = {}

    async def __call__(self, answer: PollAnswer) -> None:
        poll = self._known.get(answer.poll_id)
        if poll is None:
            poll = self._known[answer.poll_id] = await self.polls.get(answer.poll_id)
        if (why := answer_refusal(answer, poll)) is not None:
            await self.audit.record(answer.id, REFUSED_STAGE, {"poll_id": answer.poll_id, "why": why})
            log.info("poll_answer_refused", poll_id=answer.poll_id, why=why)
            return
        kept = await self.polls.answer(answer)
        log.info("poll_answer", poll_id=answer.poll_id, kept=kept)

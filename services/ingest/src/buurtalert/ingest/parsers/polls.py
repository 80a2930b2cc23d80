"""Answers to a district poll: a tapped WhatsApp reply button, or the form behind the
emailed link. Both carry the poll's signed token (:mod:`buurtalert.shared.polls`), so an
answer is accepted only from an invited member; a WhatsApp answer also only from the
number that was invited (a button id copied elsewhere answers nothing). Free of I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode

from buurtalert.ingest.parsers.common import Batch, Ignored, InvalidInput, Resolver, raw_id
from buurtalert.shared.models import PollAnswer, stable_id
from buurtalert.shared.polls import Invitation, read_choice, read_token, respondent

MAX_FORM_BYTES = 1024
NOT_VALID = "this poll link is not valid"


@dataclass(frozen=True, slots=True)
class PollView:
    """What ingest reads of a poll (the review service owns them) to show its form."""

    id: str
    question: str
    options: tuple[str, ...]
    districts: tuple[str, ...]
    language: str
    closes_at: datetime


def answer(invitation: Invitation, option: int, municipality: str, channel: str, at: datetime) -> PollAnswer:
    return PollAnswer(
        id=stable_id("pan", invitation.poll_id, invitation.respondent),
        poll_id=invitation.poll_id,
        municipality=municipality,
        district=invitation.district,
        respondent=invitation.respondent,
        option=option,
        channel="whatsapp" if channel == "whatsapp" else "web",
        answered_at=at,
    )


def from_choice(
    batch: Batch, choice_id: str, sender: str, provider_id: str, at: datetime, resolver: Resolver
) -> None:
    """A tapped reply button whose id is a poll's: the answer, or why it is ignored."""
    key = resolver.municipality.pseudonym_key
    read = read_choice(key, choice_id)
    if read is None:
        batch.ignored.append(Ignored(provider_id, "poll answer with a button id that is not ours"))
        return
    invitation, option = read
    if respondent(key, invitation.poll_id, resolver.pseudonym(sender)) != invitation.respondent:
        batch.ignored.append(Ignored(provider_id, "poll answer from a number that was not invited"))
        return
    batch.poll_answers.append(answer(invitation, option, resolver.municipality.id, "whatsapp", at))


def invitation_of(token: str, resolver: Resolver, poll: PollView | None) -> Invitation:
    """The invitation of a form's link, for an open poll; :class:`InvalidInput` otherwise."""
    invitation = read_token(resolver.municipality.pseudonym_key, token)
    if invitation is None or poll is None or poll.id != invitation.poll_id:
        raise InvalidInput(NOT_VALID, 404)
    if invitation.district not in poll.districts:
        raise InvalidInput(NOT_VALID, 404)
    return invitation


def form_fields(body: bytes) -> dict[str, str]:
    """The form's fields: ``t`` (the token of the link) and ``option``."""
    return dict(parse_qsl(body[:MAX_FORM_BYTES].decode("utf-8", "replace")))


def without_token(body: bytes) -> bytes:
    """The form's body as kept (archive, quarantine): the token answers for a member."""
    return urlencode([(k, v) for k, v in parse_qsl(body.decode("utf-8", "replace")) if k != "t"]).encode()


def parse_form(body: bytes, resolver: Resolver, poll: PollView | None, now: datetime) -> Batch:
    """The answer posted to ``/poll`` (``t=<token>&option=<n>``, form-encoded)."""
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInput(f"body is {len(body)} bytes; at most {MAX_FORM_BYTES} are accepted", 413)
    fields = form_fields(body)
    invitation = invitation_of(fields.get("t", ""), resolver, poll)
    assert poll is not None
    if now >= poll.closes_at:
        raise InvalidInput("this poll is closed", 410)
    raw = fields.get("option", "")
    if not (raw.isdigit() and len(raw) == 1) or int(raw) >= len(poll.options):
        raise InvalidInput(f"choose one of the {len(poll.options)} answers", 422)
    batch = Batch(raw_ref=raw_id(body))
    batch.poll_answers.append(answer(invitation, int(raw), resolver.municipality.id, "web", now))
    return batch

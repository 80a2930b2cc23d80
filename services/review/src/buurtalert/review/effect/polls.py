"""District polls, free of I/O: what a poll may ask, who is invited (the members of the
district's groups who consented to one-to-one messages, each once), the invitation each
gets (WhatsApp reply buttons or a list, and always a link to ingest's form), whether an
answer counts, and the results per district as they may be shown ("< 5").

Anonymous by construction: an answer carries the member only as the poll's own
respondent (:func:`buurtalert.shared.polls.respondent`), and results are counts per
district and option, small ones hidden."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from buurtalert.directory.model import Directory
from buurtalert.review.effect.figures import SMALL, SMALL_TEXT, count, share
from buurtalert.shared.models import Choice, Delivery, Destination, PollAnswer, stable_id
from buurtalert.shared.polls import Invitation, form_link, respondent
from buurtalert.shared.texts import line

#: The rule an invitation's delivery names (in the audit trail).
POLL_RULE = "effect_poll"
#: A WhatsApp reply button's title holds 20 characters; a list row 24: the lesser for both.
MAX_OPTION = 20
MAX_QUESTION = 300
#: An invitation in the poll's language, with English below when both fit in a WhatsApp
#: interactive message's body.
MAX_BODY = 1024


class PollDraft(BaseModel):
    """A poll as the municipality asks it (``buurtalert effect poll create``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    municipality: str
    districts: tuple[str, ...] = Field(min_length=1)
    question: str = Field(min_length=5, max_length=MAX_QUESTION)
    options: tuple[str, ...] = Field(min_length=2, max_length=10)
    language: str = Field(default="nl", pattern=r"^(nl|en|fr|de)$")
    open_days: int = Field(default=14, ge=1, le=90)

    @field_validator("options")
    @classmethod
    def _options(cls, options: tuple[str, ...]) -> tuple[str, ...]:
        options = tuple(o.strip() for o in options)
        if any(not o or len(o) > MAX_OPTION for o in options):
            raise ValueError(f"each answer has 1 to {MAX_OPTION} characters (a WhatsApp button's title)")
        if len({o.casefold() for o in options}) != len(options):
            raise ValueError("the answers differ from each other")
        return options


@dataclass(frozen=True, slots=True)
class Poll:
    id: str
    municipality: str
    districts: tuple[str, ...]
    question: str
    options: tuple[str, ...]
    language: str
    created_at: datetime
    closes_at: datetime
    invited: dict[str, int]
    created_by: str = ""

    def is_open(self, now: datetime) -> bool:
        return now < self.closes_at

    def document(self) -> dict[str, Any]:
        return {
            "_id": self.id,
            "municipality": self.municipality,
            "districts": list(self.districts),
            "question": self.question,
            "options": list(self.options),
            "language": self.language,
            "created_at": self.created_at,
            "closes_at": self.closes_at,
            "invited": dict(self.invited),
            "created_by": self.created_by,
        }


@dataclass(frozen=True, slots=True)
class Invitee:
    """A member invited to a poll: reached one to one through ``channel``."""

    pseudonym: str
    district: str
    channel: str
    address: str


def district_problems(draft: PollDraft, directory: Directory) -> list[str]:
    known = {d.id for d in directory.districts}
    return [f"no district {d!r} in {directory.municipality.id}" for d in draft.districts if d not in known]


def invitees(directory: Directory, districts: tuple[str, ...], channels: set[str]) -> list[Invitee]:
    """Each member of a group in ``districts`` who consented to one-to-one messages, once
    (in the first of their districts), through WhatsApp (a phone number) or email (an
    address), where the deployment has that channel."""
    district_of = {g.id: g.district for g in directory.groups if g.district in districts}
    found: dict[str, Invitee] = {}
    for member in directory.members:
        if not member.consent_one_to_one or not member.address or member.pseudonym is None:
            continue
        theirs = sorted({district_of[g] for g in member.groups if g in district_of}, key=districts.index)
        channel = "email" if "@" in member.address else "whatsapp"
        if theirs and channel in channels and member.pseudonym not in found:
            found[member.pseudonym] = Invitee(member.pseudonym, theirs[0], channel, member.address)
    return list(found.values())


def new_poll(draft: PollDraft, invited: list[Invitee], now: datetime, created_by: str) -> Poll:
    digest = hashlib.sha256(
        "\x1f".join(
            [draft.municipality, *draft.districts, draft.question, *draft.options, now.isoformat()]
        ).encode()
    ).hexdigest()
    return Poll(
        id=f"pl-{digest[:12]}",
        municipality=draft.municipality,
        districts=draft.districts,
        question=draft.question,
        options=draft.options,
        language=draft.language,
        created_at=now,
        closes_at=now + timedelta(days=draft.open_days),
        invited=dict(Counter(i.district for i in invited)),
        created_by=created_by,
    )


def invitation(
    poll: Poll, invitee: Invitee, key: SecretStr, public_url: str, municipality_name: str
) -> Delivery:
    """The invitation of one member: the same poll and member always give the same
    delivery id, so sending the invitations again reaches no one twice."""
    invited = Invitation(poll.id, invitee.district, respondent(key, poll.id, invitee.pseudonym))
    link = form_link(public_url, invited.token(key))
    closes = poll.closes_at.strftime("%Y-%m-%d")
    how_key = "poll_how_buttons" if invitee.channel == "whatsapp" else "poll_how_link"
    options = "\n".join(f"{n}. {option}" for n, option in enumerate(poll.options, start=1))

    def body(language: str) -> str:
        how = line(how_key, language, closes=closes, link=link)
        return line(
            "poll_invitation",
            language,
            municipality=municipality_name,
            question=poll.question,
            options=options,
            how=how,
        )

    own, english = body(poll.language), body("en")
    text = own if own == english or len(own) + len(english) + 5 > MAX_BODY else f"{own}\n\n--\n{english}"
    subject = line("poll_invitation_subject", poll.language, municipality=municipality_name)
    return Delivery(
        id=stable_id("pol", poll.id, invitee.pseudonym),
        message_id=poll.id,
        municipality=poll.municipality,
        destination=Destination(
            group_id=f"poll-{poll.id}",
            municipality=poll.municipality,
            channel=invitee.channel,
            address=invitee.address,
            recipient_type="individual",
            recipient=invitee.pseudonym,
            label=subject,
        ),
        text=text,
        subject=subject,
        language=poll.language,
        rules=(POLL_RULE,),
        choices=tuple(
            Choice(id=invited.choice_id(key, n), title=option) for n, option in enumerate(poll.options)
        ),
        created_at=poll.created_at,
    )


def answer_refusal(answer: PollAnswer, poll: Poll | None) -> str | None:
    """Why ``answer`` does not count, or None when it does."""
    if poll is None:
        return "no such poll"
    if answer.municipality != poll.municipality:
        return "the poll is another municipality's"
    if answer.district not in poll.districts:
        return "the poll did not ask this district"
    if not poll.is_open(answer.answered_at):
        return "the poll was closed"
    if answer.option >= len(poll.options):
        return "no such answer"
    return None


def results(poll: Poll, answers: list[tuple[str, int]]) -> dict[str, Any]:
    """The results as they may be shown: per district the members invited, those who
    answered and each answer's count and share, counts of 1 to 4 as "< 5" (and shares
    that would give one away not shown); ``answers`` are (district, option) pairs."""
    by_district: dict[str, Counter[int]] = {d: Counter() for d in poll.districts}
    for district, option in answers:
        by_district.setdefault(district, Counter())[option] += 1
    shown = []
    for district in poll.districts:
        counted = by_district[district]
        answered = sum(counted.values())
        invited = poll.invited.get(district, 0)
        shown.append(
            {
                "district": district,
                "invited": count(invited),
                "answered": count(answered),
                "response_rate": share(answered, invited),
                "options": [
                    {
                        "option": option,
                        "count": count(counted[n]),
                        "share": share(counted[n], answered) if answered >= SMALL else None,
                    }
                    for n, option in enumerate(poll.options)
                ],
            }
        )
    return {
        "id": poll.id,
        "municipality": poll.municipality,
        "question": poll.question,
        "options": list(poll.options),
        "created_at": poll.created_at.isoformat(),
        "closes_at": poll.closes_at.isoformat(),
        "small_number_rule": f"counts from 1 to {SMALL - 1} are shown as {SMALL_TEXT!r}",
        "districts": shown,
    }


def as_table(shown: dict[str, Any]) -> str:
    """The results as text, one row per district and answer."""
    lines = [f"{shown['id']}: {shown['question']}", f"open until {shown['closes_at'][:16]}", ""]
    lines.append(f"{'district':<16} {'answer':<22} {'count':>7} {'share':>7}")
    for district in shown["districts"]:
        head = f"{district['district']:<16} {'(answered/invited)':<22} "
        lines.append(head + f"{district['answered']!s:>7} {district['invited']!s:>7}")
        for option in district["options"]:
            shown_share = "" if option["share"] is None else str(option["share"])
            lines.append(f"{'':<16} {option['option']:<22} {option['count']!s:>7} {shown_share:>7}")
    return "\n".join(lines) + "\n"


def as_csv_rows(shown: dict[str, Any]) -> list[list[str]]:
    rows = [["poll", "district", "answer", "count", "share", "answered", "invited"]]
    for district in shown["districts"]:
        for option in district["options"]:
            rows.append(
                [
                    shown["id"],
                    district["district"],
                    option["option"],
                    str(option["count"]),
                    "" if option["share"] is None else str(option["share"]),
                    str(district["answered"]),
                    str(district["invited"]),
                ]
            )
    return rows

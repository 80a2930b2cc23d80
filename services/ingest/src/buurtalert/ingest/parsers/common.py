"""What every provider's parser produces (a :class:`Batch`, or :class:`InvalidInput`)
and the steps they share: resolving a sender through the directory, pseudonymising,
reading JSON, the ids of raw input and messages. Free of I/O, so the service and
``buurtalert ingest parse`` run the same code."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

from buurtalert.directory.model import Directory, Group
from buurtalert.shared.models import (
    Author,
    InboundMessage,
    MediaFetch,
    PollAnswer,
    ProviderStatus,
    Reaction,
    Role,
    SourceChannel,
    stable_id,
)
from buurtalert.shared.pseudonym import pseudonymise
from buurtalert.shared.settings import MunicipalityConfig

M = TypeVar("M", bound=BaseModel)


class InvalidInput(ValueError):
    """Input that cannot be accepted; ``str(self)`` is a clear explanation, safe to
    return to the sender. ``status`` is the HTTP status (or SMTP reply) it deserves."""

    def __init__(self, reason: str, status: int = 422) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class MembershipRequest:
    """AANMELDEN <code> or STOP, sent to the municipality's number."""

    action: Literal["join", "leave"]
    pseudonym: str
    address: str
    provider_message_id: str
    at: datetime
    code: str | None = None
    group_id: str | None = None


@dataclass(frozen=True, slots=True)
class Ignored:
    """Input deliberately not forwarded (an auto-reply, an edit, our own echo), kept with why."""

    provider_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class EmailAttachment:
    """A file attached to an email, stored in ``media`` when its message is accepted.
    ``mime_type`` is sniffed from the bytes, ``declared_type`` is the part's own."""

    storage_ref: str
    data: bytes
    mime_type: str
    filename: str
    declared_type: str
    message_id: str


@dataclass(slots=True)
class Batch:
    """Everything one webhook call, email or file yields."""

    raw_ref: str
    messages: list[InboundMessage] = field(default_factory=list)
    reactions: list[Reaction] = field(default_factory=list)
    statuses: list[ProviderStatus] = field(default_factory=list)
    media: list[MediaFetch] = field(default_factory=list)
    memberships: list[MembershipRequest] = field(default_factory=list)
    poll_answers: list[PollAnswer] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    #: pseudonym → (channel, address): how to answer the author (rejection feedback only)
    contacts: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)
    #: email attachments, stored with the batch (the bytes are not part of :meth:`as_json`)
    attachments: list[EmailAttachment] = field(default_factory=list, repr=False)

    def as_json(self) -> dict[str, object]:
        """What ``buurtalert ingest parse`` prints: no raw addresses."""
        return {
            "raw_ref": self.raw_ref,
            "messages": [m.model_dump(mode="json") for m in self.messages],
            "reactions": [r.model_dump(mode="json") for r in self.reactions],
            "statuses": [s.model_dump(mode="json") for s in self.statuses],
            "media": [m.model_dump(mode="json") for m in self.media],
            "memberships": [
                {
                    "action": m.action,
                    "pseudonym": m.pseudonym,
                    "code": m.code,
                    "group_id": m.group_id,
                    "provider_message_id": m.provider_message_id,
                }
                for m in self.memberships
            ],
            "poll_answers": [a.model_dump(mode="json") for a in self.poll_answers],
            "ignored": [{"provider_id": i.provider_id, "reason": i.reason} for i in self.ignored],
        }


def problems(exc: ValidationError, limit: int | None = None) -> str:
    """A validation error as one line a sender can act on: ``where: what; ...``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()[:limit]
    )


def parse_json(body: bytes, model: type[M], *, what: str, max_bytes: int) -> M:
    """``body`` as ``model``, or :class:`InvalidInput` (413 when too large) naming the problems."""
    if len(body) > max_bytes:
        raise InvalidInput(f"body is {len(body)} bytes; at most {max_bytes} are accepted", 413)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidInput(f"{what}{problems(exc, 5)}") from None


#: The longest text a message carries (in UTF-8 bytes); the rest stays in the raw archive.
MAX_TEXT_BYTES = 16 * 1024


def cap_text(text: str, flags: list[str]) -> str:
    """``text`` cut to :data:`MAX_TEXT_BYTES` (flagged ``text_truncated`` when cut)."""
    encoded = text.encode("utf-8")
    if len(encoded) <= MAX_TEXT_BYTES:
        return text
    flags.append("text_truncated")
    return encoded[:MAX_TEXT_BYTES].decode("utf-8", "ignore")


def raw_id(body: bytes) -> str:
    return "raw_" + hashlib.sha256(body).hexdigest()


def message_id(channel: SourceChannel, account: str | None, provider_message_id: str) -> str:
    """Our id of a provider's message: the same message delivered again gets the same id."""
    return stable_id("msg", channel, account or "", provider_message_id)


#: A provider's id of a message, a medium, a Page: never empty, never a novel.
Id = Annotated[str, Field(min_length=1, max_length=256)]
#: A sender's or recipient's id (a phone number, a page-scoped id).
Address = Annotated[str, Field(min_length=1, max_length=64)]
#: A Unix time as Meta writes it, in seconds: digits only, not 400 of them.
UnixTime = Annotated[str, Field(pattern=r"^[0-9]{1,12}(\.[0-9]{1,6})?$")]
#: Times before or after these are absurd for a message (seconds since 1970).
EARLIEST, LATEST = 946_684_800, 4_102_444_800  # 2000-01-01, 2100-01-01


def from_unix(value: str | int | float) -> datetime:
    try:
        seconds = float(value)
        if not EARLIEST <= seconds <= LATEST:
            raise ValueError
        return datetime.fromtimestamp(seconds, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise InvalidInput(f"timestamp {str(value)[:40]!r} is not a Unix time of this century") from None


def aware(moment: datetime, what: str) -> datetime:
    """``moment`` if it says its time zone and is of this century; :class:`InvalidInput` otherwise."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"{what} has no time zone")
    if not EARLIEST <= moment.timestamp() <= LATEST:
        raise InvalidInput(f"{what} is not of this century")
    return moment


@contextmanager
def invalid_as(what: str) -> Iterator[None]:
    """Turn what a record's own validation refuses (a latitude of 1000, an id too long)
    into :class:`InvalidInput` naming it: bad input, never our failure."""
    try:
        yield
    except InvalidInput:
        raise
    except ValidationError as exc:
        raise InvalidInput(f"{what}{problems(exc, 5)}") from None
    except (ValueError, TypeError, OverflowError, KeyError, AttributeError) as exc:
        raise InvalidInput(f"{what}{type(exc).__name__}: {str(exc)[:200]}") from None


@dataclass(frozen=True, slots=True)
class Sender:
    author: Author
    group: Group | None
    flags: tuple[str, ...]


class Resolver:
    """Turns a channel's sender address (and the place it posted) into an author and a group."""

    def __init__(self, municipality: MunicipalityConfig, directory: Directory | None) -> None:
        self.municipality = municipality
        self.directory = directory

    def pseudonym(self, address: str) -> str:
        return pseudonymise(self.municipality.pseudonym_key, address, self.municipality.country)

    def resolve(
        self, address: str, *, channel: str, place: str | None = None, verified: bool = True
    ) -> Sender:
        """``place`` is where the message was posted (a WhatsApp group id, a Page id, a
        list address); None for a one-to-one message, which belongs to the member's group.
        ``verified``: the channel proved the sender owns ``address``. An unverified sender
        claiming a member's address is flagged ``unverified_sender`` and gets no role
        above resident: anyone can write any From."""
        pseudonym = self.pseudonym(address)
        directory = self.directory
        flags: list[str] = []
        member = directory.member(pseudonym) if directory else None
        group: Group | None = None
        if place is not None:
            group = directory.group_at(channel, place) if directory else None
            if group is None:
                flags.append("unknown_group")
            elif member is not None and group.id not in member.groups:
                flags.append("not_a_member")
        elif member is not None and directory is not None:
            group = directory.home_group(member)
        role = member.role if member else Role.UNKNOWN
        if member is None:
            flags.append("unknown_sender")
        elif not verified:
            flags.append("unverified_sender")
            role = role if role in (Role.RESIDENT, Role.UNKNOWN) else Role.RESIDENT
        author = Author(
            pseudonym=pseudonym,
            role=role,
            member_id=member.id if member else None,
            verified=verified,
        )
        return Sender(author=author, group=group, flags=tuple(flags))


#: A provider's parser as a lane hands it to ``Intake.take``: the raw input and a
#: resolver in, a batch out, or :class:`InvalidInput`.
Parse = Callable[[bytes, Resolver], Batch]


def refuse(reason: str, status: int = 422) -> Parse:
    """A parser that refuses whatever it is given: for input a lane could not read
    (a body over the limit), so that refusal takes the same path as any other."""

    def refused(raw: bytes, resolver: Resolver) -> Batch:
        raise InvalidInput(reason, status)

    return refused

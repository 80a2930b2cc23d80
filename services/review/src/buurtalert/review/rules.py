"""The review console's rules, free of I/O: who may do what and within which scope (a
coordinator's groups, a wijkagent's districts), claims that expire, versions that make a
stale action fail, four eyes on removals, deterministic decision ids, the lockout after
failed logins, the queue's order and the highlighting of the spans that made moderation
hold a message."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from buurtalert.directory.model import Directory
from buurtalert.shared.models import (
    AUTHORITIES,
    InboundMessage,
    ModeratedMessage,
    Reason,
    RemovalProposal,
    ReviewAction,
    ReviewDecision,
    Role,
    stable_id,
)
from buurtalert.shared.texts import line

#: The roles a console user can have.
USER_ROLES = (Role.MODERATOR, Role.COORDINATOR, Role.WIJKAGENT, Role.ADMIN)
#: How long opening an item holds it for its user; the open page renews it.
CLAIM_SECONDS = 300
#: Different admins or coordinators who must agree before a member is removed.
FOUR_EYES = 2
#: Failed logins in a row that lock an account, and for how long.
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
#: How long a session lasts after logging in.
SESSION_LIFETIME = timedelta(hours=8)
#: The reasons a moderator can reject with, each with a template for the author
#: (``rejected_by_moderator.<code>`` in shared/texts.yaml).
REJECT_REASONS = (
    "privacy",
    "discrimination",
    "rumour",
    "not_an_alert",
    "off_topic",
    "vigilantism",
    "police_operation",
    "saar_missing",
)
MAX_TEXT = 4096

Kind = Literal["message", "proposal"]


class Action(StrEnum):
    """What a user does in the console (each one is audited as ``review.<action>``)."""

    VIEW = "view"
    CLAIM = "claim"
    RELEASE = "release"
    APPROVE = "approve"
    REJECT = "reject"
    EDIT = "edit"
    AGREE = "agree"
    DISMISS = "dismiss"
    REVEAL = "reveal"
    ESCALATE = "escalate"


#: Who may do what, per kind of item. Everyone sees the held messages of their own
#: municipality; editing a resident's words is for moderators, coordinators and admins;
#: a removal needs an admin or coordinator (twice: four eyes).
PERMISSIONS: dict[Kind, dict[Action, frozenset[Role]]] = {
    "message": {
        Action.VIEW: frozenset(USER_ROLES),
        Action.CLAIM: frozenset(USER_ROLES),
        Action.RELEASE: frozenset(USER_ROLES),
        Action.APPROVE: frozenset(USER_ROLES),
        Action.REJECT: frozenset(USER_ROLES),
        Action.EDIT: frozenset({Role.MODERATOR, Role.COORDINATOR, Role.ADMIN}),
        # the reporter's real address, behind a pseudonym everywhere else: for the admin
        # and the wijkagent (who may need to reach a witness), each time with a reason
        Action.REVEAL: frozenset({Role.ADMIN, Role.WIJKAGENT}),
        # a moderator unsure of a report hands it to the wijkagent (on top of their queue)
        Action.ESCALATE: frozenset({Role.MODERATOR, Role.COORDINATOR, Role.ADMIN}),
    },
    "proposal": {
        Action.VIEW: frozenset({Role.COORDINATOR, Role.ADMIN}),
        Action.CLAIM: frozenset({Role.COORDINATOR, Role.ADMIN}),
        Action.RELEASE: frozenset({Role.COORDINATOR, Role.ADMIN}),
        Action.AGREE: frozenset({Role.COORDINATOR, Role.ADMIN}),
        Action.DISMISS: frozenset({Role.COORDINATOR, Role.ADMIN}),
    },
}


def may(role: Role, action: Action, kind: Kind) -> bool:
    return role in PERMISSIONS[kind].get(action, frozenset())


class Claim(BaseModel):
    model_config = ConfigDict(frozen=True)

    by: str
    until: datetime


class Item(BaseModel):
    """One entry of the queue: a held message or a removal proposal, and what became of it."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: Kind
    municipality: str
    group_id: str | None = None
    district: str | None = None  # the group's (see district_of); None in items queued before it
    received_at: datetime
    urgent: bool = False
    reasons: tuple[str, ...] = ()
    version: int = 0
    state: Literal["open", "decided"] = "open"
    claim: Claim | None = None
    agreed_by: tuple[str, ...] = ()
    held: ModeratedMessage | None = None
    proposal: RemovalProposal | None = None
    decision: ReviewDecision | None = None
    published: bool = False
    escalated_by: str | None = None
    escalation_note: str = ""

    @property
    def text(self) -> str:
        return self.held.message.text if self.held else ""


def item_for_message(held: ModeratedMessage, district: str | None = None) -> Item:
    message, result = held.message, held.moderation
    return Item(
        id=message.id,
        kind="message",
        municipality=message.municipality,
        group_id=message.group_id,
        district=district,
        received_at=message.received_at,
        urgent=is_urgent(held),
        reasons=tuple(dict.fromkeys(r.code for r in result.reasons)),
        held=held,
    )


def item_for_proposal(proposal: RemovalProposal, district: str | None = None) -> Item:
    return Item(
        id=proposal.id,
        kind="proposal",
        municipality=proposal.municipality,
        group_id=proposal.group_id,
        district=district,
        received_at=proposal.proposed_at,
        reasons=proposal.reasons,
        proposal=proposal,
    )


def district_of(
    directory: Directory | None, group_id: str | None, message: InboundMessage | None
) -> str | None:
    """The district an item belongs to: its group's, as the directory says (moderation's
    records carry the group, not the district); for a message without a known group (an
    authority alert) the one district its target names, if it names exactly one."""
    group = directory.group(group_id) if directory is not None and group_id else None
    if group is not None:
        return group.district
    target = message.target if message is not None else None
    if target is not None and len(target.districts) == 1:
        return target.districts[0]
    return None


def is_urgent(held: ModeratedMessage) -> bool:
    """Urgent: moderation said so (112 called), a missing person, or an authority."""
    codes = {r.code for r in held.moderation.reasons}
    return (
        held.moderation.urgent
        or bool(codes & {"missing_person", "police_alert", "urgent_112"})
        or held.message.category == "missing_person"
        or held.message.author.role in AUTHORITIES
    )


def queue_order(items: Iterable[Item], *, newest_first: bool = False) -> list[Item]:
    """Urgent items first, then the oldest first (or the newest, if asked)."""
    if newest_first:
        return sorted(items, key=lambda i: (not i.urgent, -i.received_at.timestamp(), i.id))
    return sorted(items, key=lambda i: (not i.urgent, i.received_at, i.id))


def wijkagent_order(items: Iterable[Item], *, newest_first: bool = False) -> list[Item]:
    """The wijkagent's queue: what was escalated to them first, then as for everyone."""
    ordered = queue_order(items, newest_first=newest_first)
    return [i for i in ordered if i.escalated_by] + [i for i in ordered if not i.escalated_by]


#: The queue's age filter: items waiting at least this many minutes.
AGE_CHOICES = (15, 60, 240, 1440)


@dataclass(frozen=True)
class QueueFilter:
    """What a user narrowed their queue to, and its order (urgent items stay on top)."""

    reason: str | None = None
    group: str | None = None
    older_than: int | None = None  # minutes
    urgent_only: bool = False
    newest_first: bool = False

    @classmethod
    def of(cls, params: Mapping[str, str]) -> QueueFilter:
        """From a query string; anything not understood is no filter."""
        age = params.get("age", "")
        return cls(
            reason=params.get("reason") or None,
            group=params.get("group") or None,
            older_than=int(age) if age.isdigit() and int(age) in AGE_CHOICES else None,
            urgent_only=params.get("urgent") == "1",
            newest_first=params.get("sort") == "newest",
        )


def filtered(items: Iterable[Item], wanted: QueueFilter, now: datetime) -> list[Item]:
    """The items ``wanted`` keeps, in the order given (the queue's: see
    :func:`queue_order`, which also takes ``wanted.newest_first``)."""
    return [
        i
        for i in items
        if (not wanted.reason or wanted.reason in i.reasons)
        and (not wanted.group or i.group_id == wanted.group)
        and (not wanted.urgent_only or i.urgent)
        and (wanted.older_than is None or age_minutes(i.received_at, now) >= wanted.older_than)
    ]


def age_minutes(since: datetime, now: datetime) -> int:
    return max(0, int((now - since).total_seconds() // 60))


# --- claims ---------------------------------------------------------------------------


def holder(claim: Claim | None, now: datetime) -> str | None:
    """Who holds an item now (None once the claim has expired)."""
    return claim.by if claim is not None and claim.until > now else None


def may_claim(claim: Claim | None, user: str, now: datetime) -> bool:
    """An item can be claimed if nobody holds it, or the user does already (renewal)."""
    return holder(claim, now) in (None, user)


def new_claim(user: str, now: datetime) -> Claim:
    return Claim(by=user, until=now + timedelta(seconds=CLAIM_SECONDS))


# --- decisions ------------------------------------------------------------------------


class Refusal(StrEnum):
    """Why an action is refused, with the HTTP status it is answered with."""

    NOT_FOUND = "not_found"  # no such item, or another municipality's: the same to the user
    FORBIDDEN = "forbidden"
    STALE = "stale"
    CLAIMED = "claimed"
    DECIDED = "decided"
    INVALID = "invalid"

    @property
    def status(self) -> int:
        return {
            Refusal.NOT_FOUND: 404,
            Refusal.FORBIDDEN: 403,
            Refusal.INVALID: 422,
        }.get(self, 409)


@dataclass(frozen=True, slots=True)
class User:
    """A logged-in person: municipality, role and, for a scoped role, its scope (a
    coordinator's groups, a wijkagent's districts; empty for the others)."""

    name: str
    municipality: str
    role: Role
    groups: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()


# --- scope ----------------------------------------------------------------------------

#: The roles that act within a scope, and what it is made of. Moderators and admins act on
#: their whole municipality. A scoped role whose account has no scope (one stored before
#: scopes existed) sees nothing scoped: no item, no join, until its scope is set.
SCOPED: dict[Role, Literal["groups", "districts"]] = {
    Role.COORDINATOR: "groups",
    Role.WIJKAGENT: "districts",
}


@dataclass(frozen=True, slots=True)
class Scope:
    """What a user's lists are narrowed to: ``field`` (``group_id`` or ``district``) equal
    to one of ``values``; ``field`` None means the whole municipality."""

    field: Literal["group_id", "district"] | None
    values: tuple[str, ...] = ()


def scope_of(user: User) -> Scope:
    if user.role is Role.COORDINATOR:
        return Scope("group_id", user.groups)
    if user.role is Role.WIJKAGENT:
        return Scope("district", user.districts)
    return Scope(None)


def within_scope(user: User, group_id: str | None, district: str | None) -> bool:
    """Whether something of ``group_id`` in ``district`` (either may be unknown) is within
    the user's scope: always for a moderator or admin; for a coordinator when it is of one
    of their groups, for a wijkagent when it is in one of their districts."""
    scope = scope_of(user)
    if scope.field is None:
        return True
    value = group_id if scope.field == "group_id" else district
    return value is not None and value in scope.values


def scope_problems(role: Role, groups: Sequence[str], districts: Sequence[str]) -> list[str]:
    """Why an account of ``role`` may not have this scope (empty: it may): a coordinator
    needs groups and a wijkagent districts, nothing else; moderators and admins have none."""
    wanted = SCOPED.get(role)
    who = f"{'an' if role.value[0] in 'aeiou' else 'a'} {role.value}"
    problems = []
    for kind, given in (("groups", groups), ("districts", districts)):
        if kind == wanted and not given:
            problems.append(f"{who} needs --{kind}")
        elif kind != wanted and given:
            wide = "" if wanted else " (municipality-wide)"
            problems.append(f"{who} has no {kind}{wide}")
    return problems


def unknown_scope(directory: Directory | None, groups: Sequence[str], districts: Sequence[str]) -> list[str]:
    """The groups and districts the municipality's directory does not know (or why they
    cannot be checked: no directory loaded)."""
    if not groups and not districts:
        return []
    if directory is None:
        return ["no directory for the municipality: load it first (buurtalert directory load)"]
    problems = []
    for kind, given, known in (
        ("groups", groups, {g.id for g in directory.groups}),
        ("districts", districts, {d.id for d in directory.districts}),
    ):
        if unknown := sorted(set(given) - known):
            where = directory.municipality.id
            problems.append(f"{kind} unknown to the directory of {where}: {', '.join(unknown)}")
    return problems


def refusal(
    item: Item | None, user: User, action: Action, version: int | None, now: datetime
) -> Refusal | None:
    """Why ``user`` may not do ``action`` on ``item`` at ``version`` now, or None if they may.
    Another municipality's item, or one outside the user's scope, does not exist for the user."""
    if item is None or item.municipality != user.municipality:
        return Refusal.NOT_FOUND
    if not may(user.role, Action.VIEW, item.kind):
        return Refusal.NOT_FOUND
    if not within_scope(user, item.group_id, item.district):  # another group's: as another town's
        return Refusal.NOT_FOUND
    if not may(user.role, action, item.kind):
        return Refusal.FORBIDDEN
    if action in (Action.VIEW, Action.RELEASE, Action.REVEAL):
        return None
    if action is Action.CLAIM:
        if item.state != "open":
            return Refusal.DECIDED
        return None if may_claim(item.claim, user.name, now) else Refusal.CLAIMED
    if version != item.version:  # every change raises the version: a decision too
        return Refusal.STALE
    if item.state != "open":
        return Refusal.DECIDED
    if not may_claim(item.claim, user.name, now):
        return Refusal.CLAIMED
    return None


def undoable(action: ReviewAction) -> bool:
    """A forward waits out the undo window before it is published; other decisions go at once."""
    return action in (ReviewAction.APPROVE, ReviewAction.APPROVE_EDITED)


def decision_id(item_id: str, version: int) -> str:
    """One decision per item version: the same version decided twice is the same decision."""
    return stable_id("rvd", item_id, str(version))


def same_decision(item: Item, user: User, version: int | None, action: ReviewAction) -> bool:
    """Whether ``item`` was already decided by this very request (a repeated submit):
    the decision on that version, by that user, of that kind. Answered as success, with
    no second effect."""
    d = item.decision
    return (
        d is not None
        and version is not None
        and d.id == decision_id(item.id, version)
        and d.actor == user.name
        and d.action is action
    )


def rejection_explanation(reason: str, language: str | None) -> tuple[str, str]:
    """What the author is told of a moderator's rejection: in their language, and in English."""
    key = f"rejected_by_moderator.{reason}"
    return line(key, language or "nl"), line(key, "en")


def clean_edit(original: str, edited: str | None) -> str | None:
    """The edited text to deliver, or None when it is not an edit (empty or unchanged).
    Line endings are normalised as a browser's textarea sends them."""
    if edited is None:
        return None
    text = edited.replace("\r\n", "\n").strip()
    if not text or text == original.strip():
        return None
    return text


def agreements(agreed_by: Sequence[str], user: str) -> tuple[tuple[str, ...], bool]:
    """The agreements after ``user`` agrees, and whether four eyes are now reached. Agreeing
    twice counts once: it takes different people."""
    after = tuple(dict.fromkeys((*agreed_by, user)))
    return after, len(after) >= FOUR_EYES


def message_decision(
    item: Item,
    user: User,
    action: ReviewAction,
    now: datetime,
    *,
    text: str | None = None,
    reason: str | None = None,
) -> ReviewDecision:
    """The decision on a held message at its current version."""
    assert item.held is not None
    held = item.held
    explanation = explanation_en = ""
    if action is ReviewAction.REJECT:
        assert reason is not None
        explanation, explanation_en = rejection_explanation(reason, held.message.language)
    return ReviewDecision(
        id=decision_id(item.id, item.version),
        subject_id=item.id,
        municipality=item.municipality,
        group_id=item.group_id,
        action=action,
        actor=user.name,
        actor_role=user.role,
        version=item.version,
        item=held,
        text=text,
        reason=reason,
        explanation=explanation,
        explanation_en=explanation_en,
        decided_at=now,
    )


def proposal_decision(
    item: Item, user: User, action: ReviewAction, agreed_by: tuple[str, ...], now: datetime
) -> ReviewDecision:
    """The decision on a removal proposal: remove (agreed by two), or keep the member."""
    return ReviewDecision(
        id=decision_id(item.id, item.version),
        subject_id=item.id,
        municipality=item.municipality,
        group_id=item.group_id,
        action=action,
        actor=user.name,
        actor_role=user.role,
        version=item.version,
        proposal=item.proposal,
        agreed_by=agreed_by,
        decided_at=now,
    )


# --- highlighting ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    reasons: tuple[str, ...] = ()


def highlight(text: str, reasons: Sequence[Reason]) -> list[Segment]:
    """``text`` cut where the spans of the reasons start and end; each piece carries the
    reasons whose spans cover it (overlapping spans give a piece several reasons).
    Spans outside the text or empty (a photo) are left out."""
    spans = [(s.start, s.end, r.code) for r in reasons for s in r.spans if 0 <= s.start < s.end <= len(text)]
    cuts = sorted({0, len(text), *(p for s in spans for p in s[:2])})
    segments: list[Segment] = []
    for start, end in pairwise(cuts):
        covering = tuple(dict.fromkeys(code for a, b, code in spans if a <= start and end <= b))
        if segments and segments[-1].reasons == covering:
            segments[-1] = Segment(segments[-1].text + text[start:end], covering)
        else:
            segments.append(Segment(text[start:end], covering))
    return segments


# --- access ---------------------------------------------------------------------------


class Account(BaseModel):
    """A console user as stored, less the password hash."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9._@-]{1,64}$")
    municipality: str = Field(pattern=r"^[a-z0-9-]+$")
    role: Role
    groups: tuple[str, ...] = Field(default=(), description="A coordinator's groups")
    districts: tuple[str, ...] = Field(default=(), description="A wijkagent's districts")
    failures: int = 0
    locked_until: datetime | None = None


def user_of(account: Account) -> User:
    return User(account.name, account.municipality, account.role, account.groups, account.districts)


def locked(account: Account, now: datetime) -> bool:
    return account.locked_until is not None and account.locked_until > now


def after_failure(failures: int, now: datetime) -> tuple[int, datetime | None]:
    """Failed logins in a row after one more, and the lock it leads to (at MAX_FAILURES)."""
    failures += 1
    return failures, (now + LOCKOUT if failures >= MAX_FAILURES else None)


def token_hash(token: str) -> str:
    """What is stored of a session token (or compared with): its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()

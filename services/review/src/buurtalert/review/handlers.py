"""The review console's handling, apart from Kafka and HTTP: records in from
moderation, people's actions in, decisions handed to ``publish``, every view and action
in the audit trail with the person who did it.

:class:`Queue` takes what moderation held or proposed; :class:`Console` is what a
logged-in user does with it; :class:`Access` is users, passwords and sessions."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from buurtalert.review.rules import (
    MAX_TEXT,
    REJECT_REASONS,
    SESSION_LIFETIME,
    Account,
    Action,
    Item,
    Refusal,
    User,
    after_failure,
    agreements,
    clean_edit,
    item_for_message,
    item_for_proposal,
    locked,
    message_decision,
    new_claim,
    proposal_decision,
    queue_order,
    refusal,
    same_decision,
    scope_of,
    token_hash,
    undoable,
    user_of,
    wijkagent_order,
)
from buurtalert.review.stores import Items, Sessions, Users
from buurtalert.shared.logging import bound, get_logger
from buurtalert.shared.models import (
    InboundMessage,
    ModeratedMessage,
    RemovalProposal,
    ReviewAction,
    ReviewDecision,
    Role,
    utcnow,
)
from buurtalert.shared.mongo import Audit, Document

log = get_logger(__name__)
Clock = Callable[[], datetime]
#: How often decisions whose publication failed are sent again.
RESEND_SECONDS = 10.0
#: The longest note an escalation carries.
MAX_NOTE = 500


class Changes:
    """Wakes the live views of this process when a municipality's queue changed here.
    (Changes made by other processes are seen by the views' periodic look at the queue.)"""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def changed(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)


#: The district of an item: (municipality, group id, the held message if any) -> district.
DistrictOf = Callable[[str, str | None, InboundMessage | None], Awaitable[str | None]]


async def no_district(municipality: str, group_id: str | None, message: InboundMessage | None) -> None:
    return None


class Queue:
    """What moderation held (``moderation.review``) or proposed (``moderation.proposals``)
    goes into the queue once, however often it is delivered, with its group's district
    (``district_of``: from the directory), by which a wijkagent's queue is read."""

    def __init__(
        self,
        items: Items,
        audit: Audit,
        changes: Changes,
        on_queued: Callable[[Item], Awaitable[None]] | None = None,
        district_of: DistrictOf = no_district,
    ) -> None:
        self.items = items
        self.audit = audit
        self.changes = changes
        self.on_queued = on_queued  # e.g. an urgent item's deadline
        self.district_of = district_of

    async def held(self, held: ModeratedMessage) -> None:
        message = held.message
        with bound(message_id=message.id):
            district = await self.district_of(message.municipality, message.group_id, message)
            await self._add(item_for_message(held, district))

    async def proposed(self, proposal: RemovalProposal) -> None:
        district = await self.district_of(proposal.municipality, proposal.group_id, None)
        await self._add(item_for_proposal(proposal, district))

    async def _add(self, item: Item) -> None:
        if await self.items.add(item):
            await self.audit.record(
                item.id, "review.queued", {"kind": item.kind, "urgent": item.urgent}, once=True
            )
            self.changes.changed()
            log.info("queued", item=item.id, kind=item.kind, urgent=item.urgent)
        if self.on_queued is not None:  # also when redelivered: a crash may have come between
            await self.on_queued(item)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to an action: the item as it now is, the decision taken (if any), or
    why it was refused."""

    item: Item | None = None
    refused: Refusal | None = None
    decision: ReviewDecision | None = None
    repeated: bool = False
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.refused is None


class Console:
    """A logged-in user's view of and actions on their municipality's queue."""

    def __init__(
        self,
        items: Items,
        audit: Audit,
        changes: Changes,
        publish: Callable[[ReviewDecision], Awaitable[None]],
        clock: Clock = utcnow,
        on_decided: Callable[[Item, ReviewDecision], Awaitable[None]] | None = None,
        on_published: Callable[[ReviewDecision], Awaitable[None]] | None = None,
        undo_seconds: float = 0.0,
        on_reopened: Callable[[Item], Awaitable[None]] | None = None,
    ) -> None:
        self.items = items
        self.audit = audit
        self.changes = changes
        self.publish = publish
        self.clock = clock
        self.on_decided = on_decided  # e.g. an urgent item's deadline deleted
        self.on_published = on_published  # e.g. the reporter told of a forward
        self.undo_seconds = undo_seconds  # a forward takes effect this long after it is decided
        self._timers: set[asyncio.Task[bool]] = set()
        self.on_reopened = on_reopened  # e.g. an urgent item undone gets its deadline back

    async def queue(self, user: User, *, newest_first: bool = False) -> list[Item]:
        """The open items the user may see, urgent first, then oldest (or newest) first: a
        coordinator's of their groups, a wijkagent's of their districts (read so from the
        database), what was escalated to a wijkagent above all."""
        found = await self.items.open_items(user.municipality, scope_of(user))
        now = self.clock()
        order = wijkagent_order if user.role is Role.WIJKAGENT else queue_order
        visible = (i for i in found if refusal(i, user, Action.VIEW, None, now) is None)
        return order(visible, newest_first=newest_first)

    async def _audit(self, item: Item, user: User, action: str, **data: Any) -> None:
        await self.audit.record(
            item.id,
            f"review.{action}",
            {"actor": user.name, "role": user.role.value, "at": self.clock().isoformat(), **data},
        )

    async def view(self, user: User, item_id: str) -> Outcome:
        """Open an item: the user sees it (audited) and claims it if nobody holds it."""
        item = await self.items.get(item_id)
        if (why := refusal(item, user, Action.VIEW, None, self.clock())) is not None:
            return Outcome(refused=why)
        assert item is not None
        await self._audit(item, user, Action.VIEW)
        if item.state == "open" and refusal(item, user, Action.CLAIM, None, self.clock()) is None:
            claimed = await self.claim(user, item_id)
            item = claimed.item or item
        return Outcome(item=item)

    async def history(self, item_id: str) -> list[Document]:
        return await self.audit.history(item_id)

    async def claim(self, user: User, item_id: str) -> Outcome:
        """Claim the item, or renew the user's claim (the open page does so while open)."""
        item = await self.items.get(item_id)
        now = self.clock()
        if (why := refusal(item, user, Action.CLAIM, None, now)) is not None:
            return Outcome(item=item, refused=why, detail=_holder(item))
        assert item is not None
        renewal = item.claim is not None and item.claim.by == user.name and item.claim.until > now
        claim = new_claim(user.name, now)
        if not await self.items.claim(item, claim):
            latest = await self.items.get(item_id)
            return Outcome(item=latest, refused=Refusal.CLAIMED, detail=_holder(latest))
        if not renewal:
            await self._audit(item, user, Action.CLAIM, until=claim.until.isoformat())
            self.changes.changed()
        return Outcome(item=item.model_copy(update={"claim": claim}))

    async def release(self, user: User, item_id: str) -> Outcome:
        item = await self.items.get(item_id)
        if (why := refusal(item, user, Action.RELEASE, None, self.clock())) is not None:
            return Outcome(refused=why)
        assert item is not None
        if item.claim is not None and item.claim.by == user.name:
            await self.items.release(item_id, user.name)
            await self._audit(item, user, Action.RELEASE)
            self.changes.changed()
        return Outcome(item=item)

    async def approve(self, user: User, item_id: str, version: int | None, text: str | None) -> Outcome:
        """Approve a held message; with a changed ``text``, approve the edited text (the
        original stays in the audit trail)."""
        item = await self.items.get(item_id)
        edited = clean_edit(item.text, text) if item is not None and item.kind == "message" else None
        action = ReviewAction.APPROVE_EDITED if edited else ReviewAction.APPROVE
        checks = (Action.APPROVE, Action.EDIT) if edited else (Action.APPROVE,)
        if edited is not None and len(edited) > MAX_TEXT:
            hidden = refusal(item, user, Action.VIEW, None, self.clock())  # 404 before 422
            return Outcome(item=item, refused=hidden or Refusal.INVALID, detail="text too long")
        return await self._decide(
            user,
            item,
            version,
            checks,
            action,
            lambda current: message_decision(current, user, action, self.clock(), text=edited),
            audit={"original_text": item.text, "text": edited} if item is not None and edited else {},
        )

    async def reject(self, user: User, item_id: str, version: int | None, reason: str) -> Outcome:
        """Reject a held message with one of the reason templates; the author is told it."""
        item = await self.items.get(item_id)
        if reason not in REJECT_REASONS:
            known = refusal(item, user, Action.VIEW, None, self.clock())
            return Outcome(item=item, refused=known or Refusal.INVALID, detail="unknown reason")

        def decision(current: Item) -> ReviewDecision:
            return message_decision(current, user, ReviewAction.REJECT, self.clock(), reason=reason)

        return await self._decide(
            user, item, version, (Action.REJECT,), ReviewAction.REJECT, decision, audit={"reason": reason}
        )

    async def reject_many(
        self, user: User, chosen: list[tuple[str, int | None]], reason: str
    ) -> dict[str, Outcome]:
        """Bulk reject of noise: several held messages (id and the version seen), one reason
        template; each is decided as :meth:`reject` would, and refused on its own."""
        return {item_id: await self.reject(user, item_id, version, reason) for item_id, version in chosen}

    async def escalate(self, user: User, item_id: str, version: int | None, note: str) -> Outcome:
        """Hand a held message to the wijkagent (it goes on top of their queue), with a note;
        anyone may still decide it. Escalating again is answered as done."""
        item = await self.items.get(item_id)
        now = self.clock()
        note = note.strip()[:MAX_NOTE]
        if item is not None and item.escalated_by and version == item.version - 1:
            hidden = refusal(item, user, Action.VIEW, None, now)
            return Outcome(item=item, refused=hidden, repeated=hidden is None)
        if (why := refusal(item, user, Action.ESCALATE, version, now)) is not None:
            return Outcome(item=item, refused=why, detail=_holder(item))
        assert item is not None
        if not await self.items.escalate(item, user.name, note):
            return Outcome(item=await self.items.get(item_id), refused=Refusal.STALE)
        await self._audit(item, user, Action.ESCALATE, note=note)
        self.changes.changed()
        log.info("escalated", item=item.id, actor=user.name)
        return Outcome(item=await self.items.get(item_id))

    async def dismiss(self, user: User, item_id: str, version: int | None) -> Outcome:
        """Keep the member a removal proposal is about: one admin or coordinator suffices."""
        item = await self.items.get(item_id)
        return await self._decide(
            user,
            item,
            version,
            (Action.DISMISS,),
            ReviewAction.KEEP_MEMBER,
            lambda current: proposal_decision(current, user, ReviewAction.KEEP_MEMBER, (), self.clock()),
        )

    async def agree(self, user: User, item_id: str, version: int | None) -> Outcome:
        """Agree to a removal proposal. The second different admin or coordinator to agree
        decides it; until then the agreement is recorded on the item."""
        item = await self.items.get(item_id)
        if item is not None and same_decision(item, user, version, ReviewAction.REMOVE_MEMBER):
            return Outcome(item=item, decision=item.decision, repeated=True)
        now = self.clock()
        if (why := refusal(item, user, Action.AGREE, version, now)) is not None:
            return Outcome(item=item, refused=why, detail=_holder(item))
        assert item is not None
        agreed_by, four_eyes = agreements(item.agreed_by, user.name)
        if agreed_by == item.agreed_by:  # agreeing twice counts once
            return Outcome(item=item, repeated=True, detail="already agreed")
        if not four_eyes:
            if not await self.items.agree(item, agreed_by):
                return Outcome(item=await self.items.get(item_id), refused=Refusal.STALE)
            await self._audit(item, user, Action.AGREE, agreed_by=list(agreed_by))
            self.changes.changed()
            return Outcome(item=await self.items.get(item_id))
        return await self._decide(
            user,
            item,
            version,
            (Action.AGREE,),
            ReviewAction.REMOVE_MEMBER,
            lambda current: proposal_decision(
                current, user, ReviewAction.REMOVE_MEMBER, agreed_by, self.clock()
            ),
            audit={"agreed_by": list(agreed_by)},
        )

    async def _decide(
        self,
        user: User,
        item: Item | None,
        version: int | None,
        checks: tuple[Action, ...],
        action: ReviewAction,
        make: Callable[[Item], ReviewDecision],
        audit: dict[str, Any] | None = None,
    ) -> Outcome:
        if item is not None and same_decision(item, user, version, action):
            return Outcome(item=item, decision=item.decision, repeated=True)
        now = self.clock()
        for check in checks:
            if (why := refusal(item, user, check, version, now)) is not None:
                return Outcome(item=item, refused=why, detail=_holder(item))
        assert item is not None
        decision = make(item)
        delay = self.undo_seconds if undoable(action) else 0.0
        publish_after = now + timedelta(seconds=delay) if delay else None
        if not await self.items.decide(item, decision, publish_after):
            # someone else changed it between reading and writing: the same as stale
            latest = await self.items.get(item.id)
            if latest is not None and same_decision(latest, user, version, action):
                return Outcome(item=latest, decision=latest.decision, repeated=True)
            return Outcome(item=latest, refused=Refusal.STALE)
        await self._audit(item, user, action.value, decision_id=decision.id, **(audit or {}))
        self.changes.changed()
        if self.on_decided is not None:
            await self.on_decided(item, decision)
        if delay:
            self._send_later(decision, delay)
        else:
            await self.send(decision)
        log.info("decided", item=item.id, action=action, actor=user.name, undo_seconds=delay)
        return Outcome(item=await self.items.get(item.id), decision=decision)

    def _send_later(self, decision: ReviewDecision, delay: float) -> None:
        """Publish ``decision`` once its undo window has passed (unless undone by then);
        after a restart, :meth:`keep_resending` does it."""

        async def later() -> bool:
            await asyncio.sleep(delay)
            return await self.send(decision)

        task = asyncio.create_task(later(), name=f"publish {decision.id}")
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def undo(self, user: User, item_id: str) -> Outcome:
        """Take back one's own forward within its undo window: the item is open again (a new
        version), claimed by the user. Too late once its publication has begun (409)."""
        item = await self.items.get(item_id)
        now = self.clock()
        if (why := refusal(item, user, Action.VIEW, None, now)) is not None:
            return Outcome(refused=why)
        assert item is not None
        decision = item.decision
        if (
            item.state != "decided"
            or decision is None
            or decision.actor != user.name
            or not undoable(decision.action)
            or item.published
        ):
            return Outcome(item=item, refused=Refusal.DECIDED, detail="not undoable")
        if not await self.items.undo(item, new_claim(user.name, now)):
            return Outcome(item=await self.items.get(item_id), refused=Refusal.DECIDED, detail="too late")
        await self._audit(item, user, "undo", decision_id=decision.id)
        self.changes.changed()
        log.info("undone", item=item.id, actor=user.name)
        reopened = await self.items.get(item_id)
        if reopened is not None and self.on_reopened is not None:
            await self.on_reopened(reopened)
        return Outcome(item=reopened)

    async def send(self, decision: ReviewDecision) -> bool:
        """Publish a decision taken; if the broker is away, it stays unpublished and
        :meth:`send_unpublished` tries again (its id makes a repeat harmless). A decision
        undone meanwhile is not published."""
        if not await self.items.sending(decision, self.clock()):
            log.info("decision_undone_not_published", item=decision.subject_id)
            return False
        try:
            await self.publish(decision)
        except Exception:
            log.exception("decision_not_published", item=decision.subject_id)
            return False
        await self.items.published(decision.subject_id)
        if self.on_published is not None:
            try:
                await self.on_published(decision)
            except Exception:  # feedback is not worth failing a decision for
                log.exception("after_publish_failed", item=decision.subject_id)
        return True

    async def send_unpublished(self) -> int:
        sent = 0
        for decision in await self.items.unpublished(self.clock()):
            sent += await self.send(decision)
        return sent

    async def keep_resending(self, every: float = RESEND_SECONDS) -> None:
        """Send what is unpublished, every ``every`` seconds, until cancelled."""
        while True:
            try:
                if sent := await self.send_unpublished():
                    log.info("decisions_resent", count=sent)
            except Exception:  # the database is away: try again next time
                log.exception("resend_failed")
            await asyncio.sleep(every)


def _holder(item: Item | None) -> str:
    return item.claim.by if item is not None and item.claim is not None else ""


# --- access ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf: str
    expires: datetime


@dataclass(frozen=True, slots=True)
class Login:
    """A login's outcome: a session token and its CSRF token, or why not."""

    token: str | None = None
    session: Session | None = None
    refused: str | None = None  # "invalid" or "locked"


class Access:
    """Users, their argon2 password hashes, lockout after failures, and sessions stored
    by the hash of their token."""

    def __init__(self, users: Users, sessions: Sessions, clock: Clock = utcnow) -> None:
        self.users = users
        self.sessions = sessions
        self.clock = clock
        self.hasher = PasswordHasher()
        self._dummy: str | None = None

    async def add_user(
        self,
        name: str,
        municipality: str,
        role: Role,
        password: str,
        *,
        groups: tuple[str, ...] = (),
        districts: tuple[str, ...] = (),
    ) -> Account:
        """Add or replace an account (its scope: a coordinator's groups, a wijkagent's
        districts, checked against the directory by the command). Replacing one ends its
        sessions, so a new role or scope holds from the next login."""
        account = Account(name=name, municipality=municipality, role=role, groups=groups, districts=districts)
        await self.users.put(account, await asyncio.to_thread(self.hasher.hash, password))
        await self.sessions.end_all(name)
        return account

    async def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self.hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def login(self, name: str, password: str) -> Login:
        found = await self.users.get(name)
        now = self.clock()
        if found is None:
            # as slow as a real check, so a name's existence does not show in the timing
            if self._dummy is None:
                self._dummy = await asyncio.to_thread(self.hasher.hash, secrets.token_hex(8))
            await self._verify(self._dummy, password)
            return Login(refused="invalid")
        account, password_hash = found
        if locked(account, now):
            log.warning("login_locked", user=name)
            return Login(refused="locked")
        if not await self._verify(password_hash, password):
            previous = 0 if account.locked_until is not None else account.failures  # a lock that ran out
            failures, until = after_failure(previous, now)
            await self.users.failed(name, failures, until)
            log.warning("login_failed", user=name, failures=failures, locked=until is not None)
            return Login(refused="locked" if until else "invalid")
        rehash = self.hasher.check_needs_rehash(password_hash)
        await self.users.succeeded(
            name, await asyncio.to_thread(self.hasher.hash, password) if rehash else None
        )
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = now + SESSION_LIFETIME
        await self.sessions.create(token_hash(token), account, csrf, expires)
        user = user_of(account)
        log.info("login", user=name)
        return Login(token=token, session=Session(user, csrf, expires))

    async def session(self, token: str | None) -> Session | None:
        """The live session of a cookie's token; None if unknown or expired."""
        if not token:
            return None
        doc = await self.sessions.get(token_hash(token))
        if doc is None:
            return None
        if doc["expires"] <= self.clock():
            await self.sessions.delete(token_hash(token))
            return None
        user = User(
            doc["user"],
            doc["municipality"],
            Role(doc["role"]),
            tuple(doc.get("groups") or ()),  # a session begun before scopes: none (sees nothing scoped)
            tuple(doc.get("districts") or ()),
        )
        return Session(user, doc["csrf"], doc["expires"])

    async def logout(self, token: str | None) -> None:
        if token:
            await self.sessions.delete(token_hash(token))

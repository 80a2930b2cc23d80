"""Membership vetting (as Assen-Alert vets its members): the joins members asked for by
message (``AANMELDEN <code>``) wait as PENDING in the membership register until a
coordinator of the group (or an admin of the municipality) approves or refuses each, with a
reason. A coordinator sees and decides only the joins for their own groups (read per group
from the register); another group's join is not found, as another municipality's is.

The register belongs to ingest, so the console records the decision (``review_vettings``,
once per join, with who and why), puts it in the audit trail and publishes it on
``review.memberships``, which ingest applies; the member is told through channels
(``review.notices``): welcome with the house rules, or why not.

A removal two admins or coordinators agreed to is told to the member (:class:`RemovalNotice`)
and, where the group is a WhatsApp Groups API group, asked of channels on
``review.group-changes`` (:class:`GroupRemovals`), which takes the member out of it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from buurtalert.directory.model import Directory, Membership
from buurtalert.directory.store import Directories, Memberships
from buurtalert.review.notices import membership_notice, removal_notice
from buurtalert.review.rules import Refusal, User, scope_of, within_scope
from buurtalert.review.stores import Vettings
from buurtalert.shared.contacts import Contacts
from buurtalert.shared.logging import bound, get_logger
from buurtalert.shared.models import (
    Delivery,
    GroupRemoval,
    MembershipDecision,
    ReviewAction,
    ReviewDecision,
    Role,
    stable_id,
    utcnow,
)
from buurtalert.shared.mongo import Audit

log = get_logger(__name__)
#: Who vets joins: the coordinators (of their groups) and admins of the municipality.
VETTERS = frozenset({Role.COORDINATOR, Role.ADMIN})
MAX_REASON = 500


def may_vet(user: User) -> bool:
    return user.role in VETTERS


def join_id(municipality: str, member: str, group: str, requested_at: datetime) -> str:
    """One decision per join: the member, the group and when they asked (a new request
    after a refusal is a new join)."""
    return stable_id("mbd", municipality, member, group, requested_at.isoformat(timespec="milliseconds"))


@dataclass(frozen=True, slots=True)
class Join:
    """One group a pending member asked for, as the vetting screen lists it."""

    id: str
    member: str
    group_id: str
    requested_at: datetime


@dataclass(frozen=True, slots=True)
class Vetted:
    decision: MembershipDecision | None = None
    refused: Refusal | None = None
    repeated: bool = False
    detail: str = ""


class Vetting:
    def __init__(
        self,
        memberships: Memberships,
        vettings: Vettings,
        audit: Audit,
        publish: Callable[[MembershipDecision], Awaitable[None]],
        notify: Callable[[Delivery], Awaitable[None]],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.memberships = memberships
        self.vettings = vettings
        self.audit = audit
        self.publish = publish
        self.notify = notify
        self.clock = clock

    async def _members(self, user: User) -> list[Membership]:
        """The pending members of the user's municipality, or (a coordinator) those asking
        for one of the user's groups: one read of the register per group."""
        municipality, scope = user.municipality, scope_of(user)
        if scope.field is None:
            return await self.memberships.pending(municipality)
        found = await asyncio.gather(
            *(self.memberships.pending(municipality, group) for group in sorted(set(scope.values)))
        )
        return list({m.pseudonym: m for part in found for m in part}.values())

    async def _pending(self, user: User) -> list[tuple[Membership, Join]]:
        municipality = user.municipality
        found = [
            (m, Join(join_id(municipality, m.pseudonym, g, m.changed_at), m.pseudonym, g, m.changed_at))
            for m in await self._members(user)
            for g in m.requested
            if within_scope(user, g, None)  # a member asking for two groups: only the user's
        ]
        decided = await self.vettings.decided([j.id for _, j in found])
        return sorted(
            ((m, j) for m, j in found if j.id not in decided), key=lambda mj: (mj[1].requested_at, mj[1].id)
        )

    async def pending(self, user: User) -> list[Join] | None:
        """The joins waiting for the user (an admin: the municipality's; a coordinator: their
        groups'), oldest first; None for a role that does not vet."""
        if not may_vet(user):
            return None
        return [j for _, j in await self._pending(user)]

    async def join(self, user: User, join: str) -> Join | Refusal:
        """One waiting join (its own page), or why not: another group's is not found."""
        if not may_vet(user):
            return Refusal.FORBIDDEN
        found = next((j for _, j in await self._pending(user) if j.id == join), None)
        return found if found is not None else Refusal.NOT_FOUND

    async def decide(self, user: User, join: str, approved: bool, reason: str) -> Vetted:
        """Approve or refuse the join ``join`` (its id); a refusal needs a reason. Deciding
        the same join the same way again is answered as done, with no second effect."""
        if not may_vet(user):
            return Vetted(refused=Refusal.FORBIDDEN)
        reason = reason.strip()
        if len(reason) > MAX_REASON or (not approved and not reason):
            return Vetted(refused=Refusal.INVALID, detail="a refusal needs a reason")
        earlier = await self.vettings.get(join)
        if earlier is not None:
            if earlier.municipality != user.municipality or not within_scope(user, earlier.group_id, None):
                return Vetted(refused=Refusal.NOT_FOUND)
            if earlier.approved == approved and earlier.actor == user.name:
                return Vetted(decision=earlier, repeated=True)
            return Vetted(refused=Refusal.DECIDED, detail=earlier.actor)
        waiting = {j.id: (m, j) for m, j in await self._pending(user)}
        if join not in waiting:
            return Vetted(refused=Refusal.NOT_FOUND)
        member, found = waiting[join]
        decision = MembershipDecision(
            id=join,
            municipality=user.municipality,
            member=found.member,
            group_id=found.group_id,
            approved=approved,
            actor=user.name,
            actor_role=user.role,
            reason=reason,
            requested_at=found.requested_at,
            decided_at=self.clock(),
        )
        if not await self.vettings.add(decision):  # another coordinator, a moment earlier
            return await self.decide(user, join, approved, reason)
        with bound(decision_id=decision.id):
            await self.audit.record(
                decision.id,
                "review.vet",
                {
                    "actor": user.name,
                    "role": user.role.value,
                    "at": decision.decided_at.isoformat(),
                    "member": decision.member,
                    "group_id": decision.group_id,
                    "approved": approved,
                    "reason": reason,
                },
            )
            await self.send(decision)
            if member.address:
                await self._tell(membership_notice(decision, member.address))
            log.info("join_vetted", approved=approved, group=decision.group_id, actor=user.name)
        return Vetted(decision=decision)

    async def _tell(self, notice: Delivery) -> None:
        try:
            await self.notify(notice)
        except Exception:  # the member's answer is not worth failing the decision for
            log.exception("membership_notice_not_published")

    async def send(self, decision: MembershipDecision) -> bool:
        try:
            await self.publish(decision)
        except Exception:
            log.exception("membership_decision_not_published", decision_id=decision.id)
            return False
        await self.vettings.published(decision.id)
        return True

    async def keep_resending(self, every: float = 10.0) -> None:
        """Publish the decisions whose publication was not confirmed, until cancelled."""
        while True:
            try:
                for decision in await self.vettings.unpublished():
                    await self.send(decision)
            except Exception:
                log.exception("membership_resend_failed")
            await asyncio.sleep(every)


class RemovalNotice:
    """Tells a member two admins or coordinators removed from a group why, through
    ``review.notices``, once the removal is published; a member the register has no address
    for (only the directory file lists them) is recorded as not told."""

    def __init__(
        self, memberships: Memberships, audit: Audit, notify: Callable[[Delivery], Awaitable[None]]
    ) -> None:
        self.memberships = memberships
        self.audit = audit
        self.notify = notify

    async def __call__(self, decision: ReviewDecision) -> None:
        if decision.action is not ReviewAction.REMOVE_MEMBER or decision.proposal is None:
            return
        member = await self.memberships.find(decision.municipality, decision.proposal.member)
        notice = removal_notice(decision, member.address) if member is not None and member.address else None
        with bound(decision_id=decision.id):
            if notice is None:
                await self.audit.record(
                    decision.subject_id,
                    "review.removal_notice",
                    {"sent": False, "why": "no address"},
                    once=True,
                )
                log.info("removal_notice_not_sent")
                return
            await self.notify(notice)
            await self.audit.record(
                decision.subject_id, "review.removal_notice", {"sent": True, "id": notice.id}, once=True
            )


#: The audit stage of what became of a removal's WhatsApp group (on the proposal's trail).
GROUP_REMOVAL_STAGE = "review.group_removal"


def is_phone(address: str | None) -> bool:
    return bool(address) and "@" not in (address or "")


class GroupRemovals:
    """Asks channels to take a member two admins or coordinators removed out of the group's
    WhatsApp Groups API groups (``review.group-changes``, one per WhatsApp group), and
    records in the proposal's audit trail what was asked or why nothing was: a group that
    is no WhatsApp group (an email list, a buurtgroep reached member by member) has no
    group to remove from; a member whose WhatsApp number is not known cannot be named.

    Handled from ``moderation.decisions`` (review reads its own decisions back), so a
    failure takes the retry path; a repeat asks again with the same ids, which channels
    does once. The number: the one the member last wrote from on WhatsApp (``contacts``),
    else the register's, else the directory's (kept only with consent)."""

    def __init__(
        self,
        directories: Directories,
        memberships: Memberships,
        contacts: Contacts,
        audit: Audit,
        publish: Callable[[GroupRemoval], Awaitable[None]],
    ) -> None:
        self.directories = directories
        self.memberships = memberships
        self.contacts = contacts
        self.audit = audit
        self.publish = publish

    async def __call__(self, decision: ReviewDecision) -> None:
        proposal = decision.proposal
        if decision.action is not ReviewAction.REMOVE_MEMBER or proposal is None or proposal.group_id is None:
            return
        with bound(decision_id=decision.id):
            directory = await self.directories.get(decision.municipality)
            if directory is None:
                raise LookupError(f"no directory for {decision.municipality}")  # retried: it may come
            group = directory.group(proposal.group_id)
            if group is None or not group.whatsapp_groups:
                why = (
                    "unknown group"
                    if group is None
                    else f"no WhatsApp group ({group.channel}) to remove from"
                )

                await self._record(decision, {"requested": False, "why": why})
                log.info("group_removal_not_needed", why=why)
                return
            number = await self._number(decision.municipality, proposal.member, directory)
            if number is None:
                why = "no WhatsApp number known for the member: remove them in WhatsApp by hand"
                entry = {"requested": False, "why": why, "whatsapp_groups": list(group.whatsapp_groups)}
                await self._record(decision, entry)
                log.warning("group_removal_not_requested", why=why)
                return
            removals = [
                GroupRemoval(
                    id=GroupRemoval.removal_id(decision.id, whatsapp_group),
                    decision_id=decision.id,
                    subject_id=decision.subject_id,
                    municipality=decision.municipality,
                    group_id=group.id,
                    whatsapp_group_id=whatsapp_group,
                    member=proposal.member,
                    participant=number,
                    reason=", ".join(proposal.reasons),
                    agreed_by=decision.agreed_by,
                    decided_at=decision.decided_at,
                )
                for whatsapp_group in group.whatsapp_groups
            ]
            for removal in removals:
                await self.publish(removal)
            entry = {
                "requested": True,
                "whatsapp_groups": list(group.whatsapp_groups),
                "ids": [r.id for r in removals],
            }
            await self._record(decision, entry)
            log.info("group_removal_requested", whatsapp_groups=len(removals))

    async def _number(self, municipality: str, member: str, directory: Directory) -> str | None:
        contact = await self.contacts.find(municipality, member)
        if contact is not None and contact[0] == "whatsapp":
            return contact[1]
        registered = await self.memberships.find(municipality, member)
        if registered is not None and is_phone(registered.address):
            return registered.address
        listed = directory.member(member)
        return listed.address if listed is not None and is_phone(listed.address) else None

    async def _record(self, decision: ReviewDecision, entry: dict[str, Any]) -> None:
        data = {"group_id": decision.proposal.group_id if decision.proposal else None, **entry}
        await self.audit.record(decision.subject_id, GROUP_REMOVAL_STAGE, data, once=True)

"""Revealing a reporter's contact address. The console shows authors by pseudonym; the
roles that may (:data:`~buurtalert.review.rules.PERMISSIONS`, ``reveal``: the admin and
the wijkagent) can see the real address of a held message's author, each time giving a
reason. Every reveal is in the audit trail with who, when and why (never the address
itself), and shows in the item's history."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from buurtalert.review.rules import Action, Refusal, User, refusal
from buurtalert.review.stores import Items
from buurtalert.shared.contacts import Contacts
from buurtalert.shared.logging import bound, get_logger
from buurtalert.shared.models import utcnow
from buurtalert.shared.mongo import Audit

log = get_logger(__name__)
MAX_WHY = 500


@dataclass(frozen=True, slots=True)
class Revealed:
    channel: str | None = None
    address: str | None = None
    refused: Refusal | None = None
    detail: str = ""


class Reveal:
    def __init__(
        self, items: Items, contacts: Contacts, audit: Audit, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.items = items
        self.contacts = contacts
        self.audit = audit
        self.clock = clock

    async def __call__(self, user: User, item_id: str, why: str) -> Revealed:
        """The address of the item's author for ``user``, who says ``why``; refused for a
        role without the right (403), another municipality's or a missing item (404), or
        no reason (422). A reveal with no address known is audited too."""
        item = await self.items.get(item_id)
        if (denied := refusal(item, user, Action.REVEAL, None, self.clock())) is not None:
            return Revealed(refused=denied)
        assert item is not None
        why = why.strip()
        if not why or len(why) > MAX_WHY:
            return Revealed(refused=Refusal.INVALID, detail="give a reason (at most 500 characters)")
        if item.held is None:
            return Revealed(refused=Refusal.NOT_FOUND)
        author = item.held.message.author
        with bound(message_id=item.id):
            contact = await self.contacts.find(item.municipality, author.pseudonym)
            await self.audit.record(
                item.id,
                f"review.{Action.REVEAL}",
                {
                    "actor": user.name,
                    "role": user.role.value,
                    "at": self.clock().isoformat(),
                    "why": why,
                    "pseudonym": author.pseudonym,
                    "found": contact is not None,
                },
            )
            log.warning("contact_revealed", actor=user.name, found=contact is not None)
        if contact is None:
            return Revealed(detail="no address known")
        return Revealed(channel=contact[0], address=contact[1])

"""Feedback to the reporter on a person's decision. A forward (approve, approve with an
edit) is told here, once its decision is published: through ``review.notices`` to the
channel and address that reach the author (``contacts``), in their language, only for a
verified sender (the claimed address of an unverified one may be anyone's). A rejection
is told by channels from ``messages.rejected``, with the reason the moderator chose and
under the same rule (verified senders only), so it is not repeated here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from buurtalert.review.notices import forwarded_notice
from buurtalert.review.rules import item_for_message
from buurtalert.shared.contacts import Contacts
from buurtalert.shared.logging import bound, get_logger
from buurtalert.shared.models import AUTHORITIES, Delivery, ReviewAction, ReviewDecision, utcnow
from buurtalert.shared.mongo import Audit

log = get_logger(__name__)
STAGE = "review.feedback"


class ReporterFeedback:
    def __init__(
        self,
        contacts: Contacts,
        audit: Audit,
        notify: Callable[[Delivery], Awaitable[None]],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.contacts = contacts
        self.audit = audit
        self.notify = notify
        self.clock = clock

    async def __call__(self, decision: ReviewDecision) -> None:
        """Tell the author of a forwarded report; a repeat (a decision published again)
        makes the same notice, which channels sends once."""
        if decision.item is None or decision.action not in (
            ReviewAction.APPROVE,
            ReviewAction.APPROVE_EDITED,
        ):
            return
        message = decision.item.message
        with bound(message_id=message.id):
            if not message.author.verified or message.author.role in AUTHORITIES:
                # an unverified sender's address may be anyone's: not even looked up
                await self._not_sent(message.id, "sender not verified or an authority")
                return
            contact = await self.contacts.find(message.municipality, message.author.pseudonym)
            if contact is None:
                await self._not_sent(message.id, "no contact for the author")
                return
            notice = forwarded_notice(
                item_for_message(decision.item), decision.action, *contact, self.clock()
            )
            assert notice is not None
            await self.notify(notice)
            entry = {"sent": True, "channel": notice.destination.channel, "id": notice.id}
            await self.audit.record(message.id, STAGE, entry, once=True)
            log.info("reporter_feedback_sent", channel=notice.destination.channel)

    async def _not_sent(self, message_id: str, why: str) -> None:
        await self.audit.record(message_id, STAGE, {"sent": False, "why": why}, once=True)
        log.info("reporter_feedback_not_sent", why=why)

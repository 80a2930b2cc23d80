"""What the review console tells people directly, free of I/O: the on-duty moderator of an
urgent item past its deadline, and a verified reporter whose held report a moderator
forwarded. Each is a :class:`~buurtalert.shared.models.Delivery` on ``review.notices``,
which channels sends through the adapter its destination names. Ids are deterministic, so
a notice published twice is sent once (channels' delivery ledger).

A notice never quotes the message: the moderator gets the reasons, the group and a link,
the reporter the outcome in their own language."""

from __future__ import annotations

from datetime import datetime, timedelta

from buurtalert.review.rules import Item, age_minutes
from buurtalert.shared.models import (
    AUTHORITIES,
    Delivery,
    Destination,
    MembershipDecision,
    ReviewAction,
    ReviewDecision,
    stable_id,
)
from buurtalert.shared.settings import OnDuty, ReviewConfig
from buurtalert.shared.texts import line, texts

#: The rule a notice's delivery names (in its ``rules``, and so in the audit trail).
OVERDUE_RULE = "review_urgent_overdue"
FORWARDED_RULE = "review_forwarded_feedback"
FORWARDED_SUBJECT = "forwarded_by_moderator_subject"
MEMBERSHIP_RULE = "review_membership_vetting"
REMOVAL_RULE = "review_membership_removal"
#: Members ask to join by WhatsApp (AANMELDEN <code> to the municipality's number): the
#: answer goes back there.
JOIN_CHANNEL = "whatsapp"


def deadline(item: Item, config: ReviewConfig) -> datetime:
    """When an urgent item must have been decided."""
    return item.received_at + timedelta(minutes=config.urgent_deadline_minutes)


def overdue(item: Item, config: ReviewConfig, now: datetime) -> bool:
    return item.urgent and item.state == "open" and deadline(item, config) <= now


def item_link(item_id: str, config: ReviewConfig) -> str:
    """Where the moderator opens the item (the console's public address, when configured)."""
    return f"{config.console_url.rstrip('/')}/items/{item_id}" if config.console_url else item_id


def overdue_notice(item: Item, person: OnDuty, config: ReviewConfig, now: datetime) -> Delivery:
    """The notice to ``person`` (on duty) that ``item`` waited past its deadline: once per
    item and person, whatever time it is sent at."""
    language = person.language
    fields = {
        "minutes": str(age_minutes(item.received_at, now)),
        "deadline": str(config.urgent_deadline_minutes),
        "reasons": ", ".join(item.reasons) or "-",
        "group": item.group_id or "-",
        "link": item_link(item.id, config),
    }
    return Delivery(
        id=stable_id("ovd", item.id, person.name, person.channel, person.address),
        message_id=item.id,
        municipality=item.municipality,
        destination=Destination(
            group_id=f"on-duty-{person.name}",
            municipality=item.municipality,
            channel=person.channel,
            address=person.address,
            recipient_type="individual",
            label=line("urgent_overdue_subject", language, minutes=fields["minutes"]),
        ),
        text=line("urgent_overdue", language, **fields),
        subject=line("urgent_overdue_subject", language, minutes=fields["minutes"]),
        language=language,
        rules=(OVERDUE_RULE,),
        created_at=now,
    )


def forwarded_notice(
    item: Item, action: ReviewAction, channel: str, address: str, now: datetime
) -> Delivery | None:
    """The reporter's feedback when a moderator forwarded their held report, in their
    language (Dutch when unknown) with English below; None for an author who is not
    verified (the claimed address may be anyone's) or an authority (their alerts need no
    thanks). A rejection is explained by channels from ``messages.rejected``."""
    if item.held is None or action not in (ReviewAction.APPROVE, ReviewAction.APPROVE_EDITED):
        return None
    message = item.held.message
    if not message.author.verified or message.author.role in AUTHORITIES:
        return None
    language = message.language or "nl"
    key = "forwarded_by_moderator" + ("_edited" if action is ReviewAction.APPROVE_EDITED else "")
    own, english = line(key, language), line(key, "en")
    subject_own, subject_en = line(FORWARDED_SUBJECT, language), line(FORWARDED_SUBJECT, "en")
    return Delivery(
        id=stable_id("fwd", message.id),
        message_id=message.id,
        municipality=message.municipality,
        destination=Destination(
            group_id=f"author-{message.author.pseudonym}",
            municipality=message.municipality,
            channel=channel,
            address=address,
            recipient_type="individual",
            label=subject_own,
        ),
        text=own if own == english else f"{own}\n\n--\n{english}",
        subject=subject_own if subject_own == subject_en else f"{subject_own} / {subject_en}",
        language=language,
        rules=(FORWARDED_RULE,),
        created_at=now,
    )


def membership_notice(decision: MembershipDecision, address: str, language: str | None = None) -> Delivery:
    """The member's answer to their join: approved with the house rules (the code of
    conduct: report what you see now, 112 first, no names or photos of people), or refused;
    in their language when known, else Dutch, with English below. The coordinator's reason
    stays in the audit trail: it is about the member, not for them to forward."""
    key = "membership_approved" if decision.approved else "membership_refused"
    language = language or "nl"
    own, english = line(key, language, group=decision.group_id), line(key, "en", group=decision.group_id)
    subject_own, subject_en = line(f"{key}_subject", language), line(f"{key}_subject", "en")
    return Delivery(
        id=stable_id("mbn", decision.id),
        message_id=decision.id,
        municipality=decision.municipality,
        destination=Destination(
            group_id=f"member-{decision.member}",
            municipality=decision.municipality,
            channel=JOIN_CHANNEL,
            address=address,
            recipient_type="individual",
            label=subject_own,
        ),
        text=own if own == english else f"{own}\n\n--\n{english}",
        subject=subject_own if subject_own == subject_en else f"{subject_own} / {subject_en}",
        language=language,
        rules=(MEMBERSHIP_RULE,),
        created_at=decision.decided_at,
    )


def removal_notice(decision: ReviewDecision, address: str, language: str | None = None) -> Delivery | None:
    """The member's notice that two admins or coordinators removed them from the group, and
    why: the rules their rejected messages broke (the explanations of the proposal's
    reasons); None for a decision that is not a removal."""
    proposal = decision.proposal
    if proposal is None or proposal.group_id is None or decision.agreed_by == ():
        return None
    language, group, reasons = language or "nl", proposal.group_id, proposal.reasons

    def body(lang: str) -> str:
        why = [line(f"explanation.{r}", lang) for r in reasons if f"explanation.{r}" in texts()]
        return "\n".join([line("membership_removed", lang, group=group), *why])

    own, english = body(language), body("en")
    subject_own, subject_en = (
        line("membership_removed_subject", language),
        line("membership_removed_subject", "en"),
    )
    return Delivery(
        id=stable_id("rmn", decision.id),
        message_id=decision.subject_id,
        municipality=decision.municipality,
        destination=Destination(
            group_id=f"member-{proposal.member}",
            municipality=decision.municipality,
            channel=JOIN_CHANNEL,
            address=address,
            recipient_type="individual",
            label=subject_own,
        ),
        text=own if own == english else f"{own}\n\n--\n{english}",
        subject=subject_own if subject_own == subject_en else f"{subject_own} / {subject_en}",
        language=language,
        rules=(REMOVAL_RULE,),
        created_at=decision.decided_at,
    )

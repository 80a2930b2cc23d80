"""What the review console tells people directly, without I/O: the on-duty moderator of an
overdue urgent item, a verified reporter whose report a moderator forwarded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from buurtalert.review.notices import (
    FORWARDED_RULE,
    OVERDUE_RULE,
    deadline,
    forwarded_notice,
    overdue,
    overdue_notice,
)
from buurtalert.review.rules import item_for_message
from buurtalert.shared.models import Author, ReviewAction, Role
from buurtalert.shared.settings import OnDuty, ReviewConfig
from tests.review_support import held_message

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CONFIG = ReviewConfig(
    urgent_deadline_minutes=10,
    console_url="https://review.example/",
    on_duty=(OnDuty(name="anna", channel="email", address="anna@example.test"),),
)


def test_only_an_open_urgent_item_past_its_deadline_is_overdue() -> None:
    """The deadline counts from when the message was received; calm items have none."""
    urgent = item_for_message(held_message("m1", urgent=True, received_at=NOW - timedelta(minutes=11)))
    assert deadline(urgent, CONFIG) == NOW - timedelta(minutes=1)
    assert overdue(urgent, CONFIG, NOW)
    assert not overdue(urgent, CONFIG, NOW - timedelta(minutes=2))
    calm = item_for_message(held_message("m2", received_at=NOW - timedelta(hours=3)))
    assert not overdue(calm, CONFIG, NOW)
    assert not overdue(urgent.model_copy(update={"state": "decided"}), CONFIG, NOW)


def test_the_overdue_notice_is_one_per_item_and_person_and_never_quotes_the_message() -> None:
    """Its id depends on item and person only (sent once whenever it is made again); it
    names the reasons, the group, the wait and a link, in the person's language."""
    item = item_for_message(
        held_message("m1", "Vermist: jongen van 8", urgent=True, received_at=NOW - timedelta(minutes=12))
    )
    person = CONFIG.on_duty[0]
    first = overdue_notice(item, person, CONFIG, NOW)
    later = overdue_notice(item, person, CONFIG, NOW + timedelta(minutes=5))
    assert first.id == later.id
    assert first.id != overdue_notice(item, person.model_copy(update={"name": "bert"}), CONFIG, NOW).id
    assert first.destination.address == "anna@example.test" and first.destination.channel == "email"
    assert first.destination.recipient_type == "individual" and first.rules == (OVERDUE_RULE,)
    assert "12 minuten" in first.text and "https://review.example/items/m1" in first.text
    assert "privacy" in first.text and "boshoven-noord" in first.text
    assert "Vermist" not in first.text and "Vermist" not in (first.subject or "")
    english = overdue_notice(item, person.model_copy(update={"language": "en"}), CONFIG, NOW)
    assert "has waited 12 minutes" in english.text and english.language == "en"


def test_a_forward_is_told_to_verified_residents_only_in_their_language() -> None:
    """Verified authors hear that a moderator forwarded their report (an edit said so),
    in their language with English below; unverified senders and authorities do not;
    a rejection is not this notice's business."""
    item = item_for_message(held_message("m1"))
    notice = forwarded_notice(item, ReviewAction.APPROVE, "whatsapp", "31612345678", NOW)
    assert notice is not None
    assert notice.destination.address == "31612345678" and notice.rules == (FORWARDED_RULE,)
    assert notice.text.startswith("Een moderator heeft je melding bekeken en doorgestuurd")
    assert "A moderator reviewed your report" in notice.text and notice.language == "nl"
    edited = forwarded_notice(item, ReviewAction.APPROVE_EDITED, "whatsapp", "31612345678", NOW)
    assert edited is not None and "iets aangepast" in edited.text and edited.id == notice.id
    assert forwarded_notice(item, ReviewAction.REJECT, "whatsapp", "31612345678", NOW) is None

    held = held_message("m2")
    unverified = held.model_copy(
        update={"message": held.message.model_copy(update={"author": Author(pseudonym="p", verified=False)})}
    )
    assert forwarded_notice(item_for_message(unverified), ReviewAction.APPROVE, "email", "a@b.c", NOW) is None
    agent = held.model_copy(
        update={
            "message": held.message.model_copy(
                update={"author": Author(pseudonym="p", role=Role.WIJKAGENT, verified=True)}
            )
        }
    )
    assert forwarded_notice(item_for_message(agent), ReviewAction.APPROVE, "email", "a@b.c", NOW) is None

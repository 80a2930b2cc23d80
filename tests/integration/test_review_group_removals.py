"""What the review console asks of channels once two admins or coordinators agreed to a
removal, against the real database: one GroupRemoval per WhatsApp group of the group, with
the member's WhatsApp number, or, where there is no WhatsApp group or no number, nothing
asked and the reason in the proposal's audit trail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from buurtalert.directory.model import load_directory
from buurtalert.directory.store import Directories, Memberships, store_directory
from buurtalert.review.vetting import GROUP_REMOVAL_STAGE, GroupRemovals
from buurtalert.shared.contacts import Contacts
from buurtalert.shared.models import GroupRemoval, ReviewAction, ReviewDecision, Role
from buurtalert.shared.mongo import Audit, Database, mongo_client
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import INGEST, REVIEW
from tests.conftest import DEMO
from tests.review_support import removal_proposal

REGIE_WHATSAPP_GROUP = "120363041234567890"


class Asked:
    """What the handler publishes, and the handler, over this test's database."""

    def __init__(self, db: Database) -> None:
        self.published: list[GroupRemoval] = []
        self.audit = Audit(db)

        async def publish(removal: GroupRemoval) -> None:
            self.published.append(removal)

        self.removals = GroupRemovals(Directories(db), Memberships(db), Contacts(db), self.audit, publish)


@pytest.fixture
async def asked(settings: Settings) -> AsyncIterator[Asked]:
    client = mongo_client(settings)
    try:
        key = load_municipality_config(DEMO / "weert" / "municipality.yaml").pseudonym_key
        directory = load_directory(DEMO / "weert" / "directory.yaml").pseudonymised(key)
        await store_directory(Database(client[settings.database], "directory"), directory)
        ingest = Database(client[settings.database], INGEST)
        await Contacts(ingest).remember("weert-demo", "p_writer", "whatsapp", "31677777777")
        await Contacts(ingest).remember("weert-demo", "p_mailer", "email", "buur@example.test")
        at = datetime(2026, 5, 1, 9, tzinfo=UTC)
        memberships = Memberships(ingest)
        assert await memberships.join("weert-demo", "p_joined", "31688888888", "boshoven-regie", at)
        yield Asked(Database(client[settings.database], REVIEW))
    finally:
        await client.close()


def removal(proposal_id: str, member: str, group: str = "boshoven-regie") -> ReviewDecision:
    return ReviewDecision(
        id=f"dec_{proposal_id}",
        subject_id=proposal_id,
        municipality="weert-demo",
        group_id=group,
        action=ReviewAction.REMOVE_MEMBER,
        actor="carl",
        actor_role=Role.COORDINATOR,
        version=1,
        proposal=removal_proposal(proposal_id, group_id=group, member=member),
        agreed_by=("anna", "carl"),
    )


async def test_a_member_who_wrote_on_whatsapp_is_asked_out_of_each_whatsapp_group_once(asked: Asked) -> None:
    """The number the member last wrote from on WhatsApp names them; the same decision read
    twice asks again with the same id (channels does it once); the trail records the request."""
    decision = removal("rmv_1", "p_writer")
    await asked.removals(decision)
    await asked.removals(decision)
    first, again = asked.published
    assert first == again and first.id == GroupRemoval.removal_id("dec_rmv_1", REGIE_WHATSAPP_GROUP)
    assert first.whatsapp_group_id == REGIE_WHATSAPP_GROUP and first.group_id == "boshoven-regie"
    assert first.participant.get_secret_value() == "31677777777" and first.reason == "off_topic"
    entry = await asked.audit.entry("rmv_1", GROUP_REMOVAL_STAGE)
    assert entry == {
        "group_id": "boshoven-regie",
        "requested": True,
        "whatsapp_groups": [REGIE_WHATSAPP_GROUP],
        "ids": [first.id],
    }


async def test_the_registers_number_names_a_member_who_joined_by_message(asked: Asked) -> None:
    """No WhatsApp contact, but the register keeps the number they joined with."""
    await asked.removals(removal("rmv_2", "p_joined"))
    [only] = asked.published
    assert only.participant.get_secret_value() == "31688888888"


async def test_nothing_is_asked_without_a_whatsapp_group_or_a_number_and_the_trail_says_why(
    asked: Asked,
) -> None:
    """An email-only buurtgroep has no WhatsApp group; a member known only by email has no
    number; a decision that keeps the member, or is about a message, asks nothing at all."""
    await asked.removals(removal("rmv_3", "p_writer", group="boshoven-noord"))
    await asked.removals(removal("rmv_4", "p_mailer"))
    kept = removal("rmv_5", "p_writer").model_copy(update={"action": ReviewAction.KEEP_MEMBER})
    await asked.removals(kept)
    assert asked.published == []
    no_group = await asked.audit.entry("rmv_3", GROUP_REMOVAL_STAGE)
    assert no_group is not None and no_group["requested"] is False and "no WhatsApp group" in no_group["why"]
    no_number = await asked.audit.entry("rmv_4", GROUP_REMOVAL_STAGE)
    assert no_number is not None and no_number["requested"] is False
    assert "no WhatsApp number" in no_number["why"]
    assert await asked.audit.entry("rmv_5", GROUP_REMOVAL_STAGE) is None

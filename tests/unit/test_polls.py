"""District polls without I/O: the signed token, who is invited, the invitation each
member gets (and that Meta's rules for interactive messages accept it), how ingest reads
an answer, which answers count, and the results under the small-number rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr, ValidationError

from buurtalert.channels.adapters.whatsapp import WhatsAppAdapter, WhatsAppConfig
from buurtalert.devkit.graph_emulator import interactive_problem, tapped
from buurtalert.directory.model import Directory, Member, load_directory
from buurtalert.ingest.parsers import polls as ingest_polls
from buurtalert.ingest.parsers import whatsapp
from buurtalert.ingest.parsers.common import InvalidInput, Resolver, raw_id
from buurtalert.review.effect.polls import (
    Invitee,
    PollDraft,
    answer_refusal,
    invitation,
    invitees,
    new_poll,
    results,
)
from buurtalert.shared.models import PollAnswer
from buurtalert.shared.polls import Invitation, read_choice, read_token, respondent
from buurtalert.shared.pseudonym import pseudonymise
from buurtalert.shared.settings import load_municipality_config
from tests.conftest import DEMO
from tests.meta import wa_messages

MUNI = load_municipality_config(DEMO / "weert" / "municipality.yaml")
KEY = MUNI.pseudonym_key
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
MAIL_MEMBER = Member(
    id="bewoner-oost-mail",
    groups=("centrum-oost", "boshoven-noord"),
    address="oost1@example.test",
    consent_one_to_one=True,
)


def directory() -> Directory:
    loaded = load_directory(DEMO / "weert" / "directory.yaml")
    extended = loaded.model_copy(update={"members": (*loaded.members, MAIL_MEMBER)})
    return extended.pseudonymised(KEY)


def draft(**change: object) -> PollDraft:
    fields: dict[str, object] = {
        "municipality": "weert-demo",
        "districts": ("centrum", "boshoven"),
        "question": "Voelt u zich veiliger in uw straat dan een jaar geleden?",
        "options": ("Ja", "Nee", "Weet niet"),
    }
    return PollDraft.model_validate(fields | change)


def test_a_token_names_its_invitation_and_any_change_or_other_key_voids_it() -> None:
    invited = Invitation("pl-0123456789ab", "centrum", respondent(KEY, "pl-0123456789ab", "p1"))
    token = invited.token(KEY)
    assert read_token(KEY, token) == invited
    poll, _district, who, signature = token.split(".")
    assert read_token(KEY, f"{poll}.boshoven.{who}.{signature}") is None  # another district
    assert read_token(KEY, token[:-2] + ("AA" if not token.endswith("AA") else "BB")) is None
    assert read_token(SecretStr("another-municipality-key"), token) is None
    assert read_token(KEY, "not.a.token") is None
    assert read_choice(KEY, invited.choice_id(KEY, 2)) == (invited, 2)
    assert read_choice(KEY, "poll:" + token + ":x") is None


def test_a_member_is_a_different_respondent_in_every_poll() -> None:
    """Answers to two polls cannot be joined into a profile of one member."""
    assert respondent(KEY, "pl-000000000001", "p1") != respondent(KEY, "pl-000000000002", "p1")
    assert respondent(KEY, "pl-000000000001", "p1") == respondent(KEY, "pl-000000000001", "p1")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"options": ("Ja",)}, "at least 2"),
        ({"options": ("Ja", "ja")}, "differ"),
        ({"options": ("Ja", "Een antwoord van veel te veel tekens")}, "20 characters"),
        ({"question": "?"}, "at least 5"),
        ({"districts": ()}, "at least 1"),
        ({"open_days": 400}, "less than or equal to 90"),
    ],
)
def test_a_poll_that_whatsapp_could_not_show_or_nobody_could_answer_is_refused(
    change: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        draft(**change)


def test_members_who_consented_are_invited_once_through_the_channel_their_address_allows() -> None:
    found = invitees(directory(), ("centrum", "boshoven"), {"whatsapp", "email"})
    by_member = {i.pseudonym: i for i in found}
    west3 = pseudonymise(KEY, "+31 6 00000013")  # no consent: never invited
    wijkagent = pseudonymise(KEY, "+31 6 00000001")  # no consent either
    assert west3 not in by_member and wijkagent not in by_member
    mail = by_member[pseudonymise(KEY, "oost1@example.test")]
    assert (mail.channel, mail.district) == ("email", "centrum")  # in two districts: asked once
    assert sorted(i.channel for i in found) == ["email", "whatsapp", "whatsapp", "whatsapp"]
    only_whatsapp = invitees(directory(), ("centrum",), {"whatsapp"})
    assert {i.channel for i in only_whatsapp} == {"whatsapp"} and len(only_whatsapp) == 2


def test_the_invitation_carries_buttons_that_meta_accepts_and_a_link_for_the_form() -> None:
    found = invitees(directory(), ("centrum",), {"whatsapp", "email"})
    poll = new_poll(draft(districts=("centrum",)), found, NOW, "admin")
    phone = next(i for i in found if i.channel == "whatsapp")
    delivery = invitation(poll, phone, KEY, "https://meld.weert.example", "Weert")
    assert delivery.id == invitation(poll, phone, KEY, "https://meld.weert.example", "Weert").id
    assert delivery.destination.recipient == phone.pseudonym and delivery.destination.channel == "whatsapp"
    assert (
        "Voelt u zich veiliger" in delivery.text and "https://meld.weert.example/poll?t=pl-" in delivery.text
    )
    assert "anoniem" in delivery.text and "anonymous" in delivery.text
    assert [c.title for c in delivery.choices] == ["Ja", "Nee", "Weet niet"]
    adapter = WhatsAppAdapter(
        WhatsAppConfig(phone_number_id="1", access_token=SecretStr("t"), messages_per_second=80)
    )
    body = adapter.payload(delivery, delivery.text)
    assert body["type"] == "interactive" and body["interactive"]["type"] == "button"
    assert interactive_problem(body["interactive"]) is None
    many = new_poll(draft(options=tuple(f"Optie {n}" for n in range(7))), found, NOW, "admin")
    listed = adapter.payload(invitation(many, phone, KEY, "https://x.example", "Weert"), "tekst")
    assert listed["interactive"]["type"] == "list" and interactive_problem(listed["interactive"]) is None
    mail = next(i for i in found if i.channel == "email")
    assert "knoppen" not in invitation(poll, mail, KEY, "https://x.example", "Weert").text


def test_the_emulator_refuses_what_meta_refuses_in_an_interactive_message() -> None:
    buttons = [{"type": "reply", "reply": {"id": f"b{n}", "title": f"T{n}"}} for n in range(4)]
    assert "1 to 3" in str(
        interactive_problem({"type": "button", "body": {"text": "x"}, "action": {"buttons": buttons}})
    )
    long_title = [{"type": "reply", "reply": {"id": "b", "title": "x" * 21}}]
    assert "titles" in str(
        interactive_problem({"type": "button", "body": {"text": "x"}, "action": {"buttons": long_title}})
    )
    assert "body.text" in str(interactive_problem({"type": "button", "body": {"text": "x" * 1025}}))


def whatsapp_answer(sender: str, choice_id: str, at: float) -> bytes:
    sent = {
        "id": "wamid.sent",
        "from": "106540352242922",
        "to": sender,
        "interactive": {
            "type": "button",
            "action": {"buttons": [{"type": "reply", "reply": {"id": choice_id, "title": "Ja"}}]},
        },
    }
    return wa_messages(tapped(sent, 0, at))


def test_a_tapped_button_is_an_answer_of_the_invited_number_only_and_never_a_message() -> None:
    resolver = Resolver(MUNI, directory())
    member = "31600000011"
    invited = Invitation(
        "pl-0123456789ab", "centrum", respondent(KEY, "pl-0123456789ab", resolver.pseudonym(member))
    )
    body = whatsapp_answer(member, invited.choice_id(KEY, 1), NOW.timestamp())
    batch = whatsapp.parse(body, resolver=resolver, config=MUNI.ingest.whatsapp, raw_ref=raw_id(body))
    assert batch.messages == [] and len(batch.poll_answers) == 1
    answer = batch.poll_answers[0]
    assert (answer.poll_id, answer.district, answer.option, answer.channel) == (
        "pl-0123456789ab",
        "centrum",
        1,
        "whatsapp",
    )
    assert answer.respondent == invited.respondent and member not in answer.model_dump_json()
    stranger = whatsapp_answer("31699999999", invited.choice_id(KEY, 1), NOW.timestamp())
    refused = whatsapp.parse(
        stranger, resolver=resolver, config=MUNI.ingest.whatsapp, raw_ref=raw_id(stranger)
    )
    assert refused.poll_answers == [] and refused.messages == []
    assert [i.reason for i in refused.ignored] == ["poll answer from a number that was not invited"]
    forged = whatsapp_answer(
        member, "poll:pl-0123456789ab.centrum.000000000000000000000000.AAAA:1", NOW.timestamp()
    )
    forged_batch = whatsapp.parse(
        forged, resolver=resolver, config=MUNI.ingest.whatsapp, raw_ref=raw_id(forged)
    )
    assert forged_batch.poll_answers == [] and "not ours" in forged_batch.ignored[0].reason


def form_poll(closes: datetime) -> ingest_polls.PollView:
    return ingest_polls.PollView("pl-0123456789ab", "Veiliger?", ("Ja", "Nee"), ("centrum",), "nl", closes)


def test_the_form_takes_one_of_the_options_while_the_poll_is_open() -> None:
    resolver = Resolver(MUNI, None)
    token = Invitation("pl-0123456789ab", "centrum", "a" * 24).token(KEY)
    open_poll = form_poll(NOW + timedelta(days=1))
    batch = ingest_polls.parse_form(f"t={token}&option=1".encode(), resolver, open_poll, NOW)
    assert [(a.option, a.channel, a.respondent) for a in batch.poll_answers] == [(1, "web", "a" * 24)]
    cases = [
        (f"t={token}&option=2", open_poll, 422),
        (f"t={token}&option=-1", open_poll, 422),
        (f"t={token}&option=1", form_poll(NOW), 410),
        (f"t={token[:-3]}xyz&option=1", open_poll, 404),
        ("option=1", open_poll, 404),
        (f"t={token}&option=1", None, 404),
        (f"t={token}&option=1&pad={'x' * 2000}", open_poll, 413),
    ]
    for body, poll, status in cases:
        with pytest.raises(InvalidInput) as refused:
            ingest_polls.parse_form(body.encode(), resolver, poll, NOW)
        assert refused.value.status == status, body
    assert b"t=" not in ingest_polls.without_token(f"t={token}&option=1".encode())


def test_an_answer_counts_only_for_an_open_poll_of_its_municipality_and_district() -> None:
    found = [Invitee("p1", "centrum", "whatsapp", "31600000011")]
    poll = new_poll(draft(districts=("centrum",)), found, NOW, "admin")

    def answer(**change: object) -> PollAnswer:
        fields: dict[str, object] = {
            "id": "pan_1",
            "poll_id": poll.id,
            "municipality": "weert-demo",
            "district": "centrum",
            "respondent": "a" * 24,
            "option": 0,
            "channel": "web",
            "answered_at": NOW + timedelta(hours=1),
        }
        return PollAnswer.model_validate(fields | change)

    assert answer_refusal(answer(), poll) is None
    assert answer_refusal(answer(), None) == "no such poll"
    assert answer_refusal(answer(district="boshoven"), poll) == "the poll did not ask this district"
    assert answer_refusal(answer(municipality="bocholt-demo"), poll) == "the poll is another municipality's"
    assert answer_refusal(answer(answered_at=NOW + timedelta(days=15)), poll) == "the poll was closed"
    assert answer_refusal(answer(option=3), poll) == "no such answer"


def test_results_show_counts_per_district_and_hide_small_ones() -> None:
    found = [Invitee(f"c{n}", "centrum", "whatsapp", "x") for n in range(25)] + [
        Invitee(f"b{n}", "boshoven", "whatsapp", "x") for n in range(6)
    ]
    poll = new_poll(draft(), found, NOW, "admin")
    answers = [("centrum", 0)] * 9 + [("centrum", 1)] * 5 + [("centrum", 2)] * 2 + [("boshoven", 0)] * 3
    shown = results(poll, answers)
    centrum, boshoven = shown["districts"]
    assert (centrum["invited"], centrum["answered"], centrum["response_rate"]) == (25, 16, 0.64)
    assert [(o["option"], o["count"]) for o in centrum["options"]] == [
        ("Ja", 9),
        ("Nee", 5),
        ("Weet niet", "< 5"),
    ]
    assert centrum["options"][0]["share"] == 0.562 and centrum["options"][2]["share"] == "< 5"
    assert (boshoven["invited"], boshoven["answered"]) == (6, "< 5")
    assert boshoven["response_rate"] == "< 5"  # 3 of 6, and the 3 who did not answer: both small
    assert all(o["share"] is None for o in boshoven["options"])
    assert [o["count"] for o in boshoven["options"]] == ["< 5", 0, 0]

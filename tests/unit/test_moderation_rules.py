"""The skeleton's moderation rules decide as the group rules say."""

from __future__ import annotations

import pytest

from buurtalert.moderation.rules import decide, score
from buurtalert.shared.models import Decision, Role


def _decide(text: str, role: Role = Role.RESIDENT) -> tuple[Decision, set[str]]:
    result = decide("m1", text, author_role=role, policy_version="test")
    return result.decision, {r.code for r in result.reasons}


@pytest.mark.parametrize("text", ["Bedankt allemaal!", "👍👍", "+1", "top", "Dank je wel hoor"])
def test_reactions_are_rejected(text: str) -> None:
    """Thanks, thumbs-up and +1 are reactions, not reports, and are not forwarded."""
    decision, codes = _decide(text)
    assert decision is Decision.REJECT
    assert "reaction_only" in codes


def test_off_topic_pet_message_is_rejected_with_the_span() -> None:
    """A lost cat is off-topic; the reason points at the word that fired."""
    result = decide("m1", "Wie heeft onze kat gezien? Rode kater.", policy_version="t")
    assert result.decision is Decision.REJECT
    off = next(r for r in result.reasons if r.code == "off_topic")
    assert {s.text for s in off.spans} >= {"kat", "kater"}


def test_vigilantism_is_rejected_even_from_a_coordinator() -> None:
    """Calls to take the law into one's own hands are never forwarded."""
    decision, codes = _decide("Als ik hem zie pak hem en sla hem in elkaar", Role.COORDINATOR)
    assert decision is Decision.REJECT
    assert "vigilantism" in codes


def test_ethnicity_without_details_is_held_for_review() -> None:
    """'Donkere man loopt door de straat' describes origin, not behaviour: review."""
    decision, codes = _decide("Donkere man loopt door de straat")
    assert decision is Decision.REVIEW
    assert "discrimination" in codes


def test_ethnicity_with_two_other_details_is_not_flagged() -> None:
    """Following Nextdoor: with behaviour and several other details the description may pass."""
    _, codes = _decide("Getinte man met rode jas en zwarte rugzak probeert autodeuren, 112 gebeld")
    assert "discrimination" not in codes


def test_phone_number_is_a_privacy_reason_with_its_span() -> None:
    """Phone numbers of persons are personal data: hold for review."""
    text = "Die man belde vanaf 06-12345678 aan de deur"
    result = decide("m1", text, policy_version="t")
    assert result.decision is Decision.REVIEW
    privacy = next(r for r in result.reasons if r.code == "privacy")
    assert text[privacy.spans[0].start : privacy.spans[0].end] == "06-12345678"


def test_urgent_report_without_112_gets_the_saar_reminder() -> None:
    """A crime in progress without mention of 112 is forwarded with the SAAR reminder."""
    result = decide("m1", "Nu inbraak bezig bij nummer 4!", policy_version="t")
    assert result.decision is Decision.FORWARD
    assert result.saar_reminder
    assert "112" in result.explanation


def test_urgent_report_that_called_112_gets_no_reminder() -> None:
    """Saying that 112 was called satisfies SAAR."""
    result = decide("m1", "Inbraak bezig bij nummer 4, 112 is gebeld", policy_version="t")
    assert not result.saar_reminder


def test_authority_alert_skips_the_noise_filters_but_not_privacy() -> None:
    """A wijkagent's 'bedankt' is not filtered as a reaction, but a phone number still is reviewed."""
    assert "reaction_only" not in {r.code for r in score("Bedankt", author_role=Role.WIJKAGENT)}
    decision, codes = _decide("Bel 0612345678 bij tips", Role.WIJKAGENT)
    assert decision is Decision.REVIEW and "privacy" in codes


def test_words_match_whole_tokens_only() -> None:
    """'katten' in 'kattenkwaad' or 'pool' in 'poolster' must not fire."""
    assert score("Kattenkwaad bij de poolster") == []


def test_skin_colour_of_a_thing_is_not_ethnicity() -> None:
    """'Zwarte scooter' describes a vehicle; 'zwarte man' without details is held."""
    assert "discrimination" not in {r.code for r in score("Zwarte scooter rijdt hard weg")}
    assert "discrimination" in {r.code for r in score("Zwarte man rijdt hard weg")}


def test_hyphenated_origin_words_are_matched() -> None:
    """Word lists are tokenised like the text, so hyphenated words match."""
    assert "discrimination" in {r.code for r in score("Oost-Europeaan belt aan")}

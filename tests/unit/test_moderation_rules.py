"""The skeleton's moderation rules decide as the group rules say."""

from __future__ import annotations

from pathlib import Path

import pytest

from buurtalert.moderation.policy import default_policy, load_policy
from buurtalert.moderation.rules import hold_flagged, scorer_for
from buurtalert.shared.models import Decision, ModerationResult, Reason, Role
from buurtalert.shared.yamlfile import ConfigFileError


def decide(message_id: str, text: str, *, author_role: Role = Role.UNKNOWN) -> ModerationResult:
    return scorer_for().decide(message_id, text, author_role=author_role)


def score(text: str, *, author_role: Role = Role.UNKNOWN) -> list[Reason]:
    return scorer_for().score(text, author_role=author_role)[0]


def _decide(text: str, role: Role = Role.RESIDENT) -> tuple[Decision, set[str]]:
    result = decide("m1", text, author_role=role)
    return result.decision, {r.code for r in result.reasons}


@pytest.mark.parametrize(
    "text", ["Bedankt allemaal!", "👍👍", "+1", "top", "Dank je wel hoor", "Top, bedankt! 👍"]
)
def test_reactions_are_rejected(text: str) -> None:
    """Thanks, thumbs-up and +1 are reactions, not reports, and are not forwarded."""
    decision, codes = _decide(text)
    assert decision is Decision.REJECT
    assert "reaction_only" in codes


def test_off_topic_pet_message_is_rejected_with_the_span() -> None:
    """A lost cat is off-topic; the reason points at the word that fired."""
    result = decide("m1", "Wie heeft onze kat gezien? Rode kater.")
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
    result = decide("m1", text)
    assert result.decision is Decision.REVIEW
    privacy = next(r for r in result.reasons if r.code == "privacy")
    assert text[privacy.spans[0].start : privacy.spans[0].end] == "06-12345678"


def test_urgent_report_without_112_gets_the_saar_reminder() -> None:
    """A crime in progress without mention of 112 is forwarded with the SAAR reminder."""
    result = decide("m1", "Nu inbraak bezig bij nummer 4!")
    assert result.decision is Decision.FORWARD
    assert result.saar_reminder
    assert "112" in result.explanation


def test_urgent_report_that_called_112_gets_no_reminder() -> None:
    """Saying that 112 was called satisfies SAAR."""
    result = decide("m1", "Inbraak bezig bij nummer 4, 112 is gebeld")
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


def test_joke_and_chain_message_are_rejected() -> None:
    """Jokes and chain messages ('stuur dit door naar iedereen') are not forwarded."""
    assert _decide("Hahaha die was goed 😂") == (Decision.REJECT, {"joke"})
    decision, codes = _decide("LET OP nieuwe truc van oplichters, stuur dit door naar iedereen!")
    assert decision is Decision.REJECT and "chain_message" in codes


def test_rumour_without_observation_is_held() -> None:
    """An accusation built on hearsay ('ik heb gehoord dat...') is held for a moderator."""
    decision, codes = _decide("Ik heb gehoord dat die dealer van de hoek achter de inbraken zit")
    assert decision is Decision.REVIEW and "rumour" in codes


def test_missing_pet_is_off_topic_not_a_missing_person() -> None:
    """'Vermiste kat' is a pet: rejected as off-topic, never treated as an alert."""
    decision, codes = _decide("Vermiste kat, grijs met witte poten, wie heeft haar gezien?")
    assert decision is Decision.REJECT and "missing_person" not in codes


def test_missing_person_is_forwarded() -> None:
    """A missing person report is an alert and is forwarded."""
    decision, codes = _decide("Vermist: man van 82, verward, blauwe jas, loopt met rollator. 112 is gebeld.")
    assert decision is Decision.FORWARD and "missing_person" in codes


def test_name_with_an_accusation_is_held_for_privacy() -> None:
    """Naming a person as the culprit is personal data with an accusation: review."""
    decision, codes = _decide("Pietje Jansen van de Dorpstraat 14 is de dief, ik weet het zeker")
    assert decision is Decision.REVIEW and "privacy" in codes


def test_licence_plate_alone_is_fine_with_an_accusation_it_is_held() -> None:
    """A plate of a suspicious car may be shared; a plate named as 'the thief' is held."""
    _, plain = _decide("Verdachte auto rijdt langzaam rond, kenteken 12-ABC-3, 112 gebeld")
    assert "privacy" not in plain
    _, accused = _decide("De eigenaar van 12-ABC-3 is de dief van de fietsen")
    assert "privacy" in accused


def test_noise_inside_an_alert_is_held_for_review_not_rejected() -> None:
    """A genuine alert is never rejected by a noise word in it: a person decides."""
    decision, codes = _decide("Inbraak bezig bij de buren, de hond blaft de hele tijd, 112 gebeld!")
    assert "urgent_112" in codes and "off_topic" in codes
    assert decision is Decision.REVIEW


def test_belgian_policy_requires_calling_the_police_first() -> None:
    """In Flemish municipalities that require 101 first, a crime report without it is held."""
    be = scorer_for(default_policy("BE"))
    held = be.decide("m", "Verdachte man probeert deuren in de Kerkstraat")
    assert held.decision is Decision.REVIEW and "saar_missing" in {r.code for r in held.reasons}
    assert "101" in held.explanation and held.policy_version.startswith("be-")
    ok = be.decide("m", "Verdachte man probeert deuren in de Kerkstraat, 101 gebeld")
    assert ok.decision is Decision.FORWARD


def test_result_records_the_policy_version_and_explains_in_two_languages() -> None:
    """Every result names its policy version; explanations exist in Dutch and English."""
    result = decide("m", "Bedankt!")
    assert result.policy_version == default_policy("NL").version
    assert "meldingen" in result.explanation and "reports" in result.explanation_en


def test_policy_file_errors_name_the_line(tmp_path: Path) -> None:
    """A policy with an unknown action is refused with the line of the mistake."""
    path = tmp_path / "policy.yaml"
    path.write_text("version: x\ncountry: NL\npolice_numbers: ['112']\nrules:\n  joke: {action: ban}\n")
    with pytest.raises(ConfigFileError, match=r"line 5: rules\.joke\.action"):
        load_policy(path)


def test_flagged_messages_are_held_for_review_never_forwarded_by_rule() -> None:
    """An unknown sender or an unsupported message type needs a person's judgement."""
    clean = decide("m1", "Verdachte man bij de school, 112 is gebeld", author_role=Role.RESIDENT)
    assert clean.decision is Decision.FORWARD
    held = hold_flagged(clean, ("unknown_sender", "html_only"))
    assert held.decision is Decision.REVIEW
    assert [r.code for r in held.reasons if r.code.startswith("ingest:")] == ["ingest:unknown_sender"]
    assert hold_flagged(clean, ("html_only", "mime_defects")).decision is Decision.FORWARD
    assert hold_flagged(clean, ("unsupported_type:order",)).decision is Decision.REVIEW

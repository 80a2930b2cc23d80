"""Moderation's rules decide as the group rules say (the rules alone, without the
learned model: how the two combine is checked at the end of this module)."""

from __future__ import annotations

import gc
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from buurtalert.moderation.model import LinearModel, Thresholds, features, normalise_text
from buurtalert.moderation.policy import default_policy, load_policy
from buurtalert.moderation.rules import Scorer, Signals, _PrivacyDetector, cascade, hold_flagged
from buurtalert.shared.models import Decision, ModerationResult, Reason, Role
from buurtalert.shared.yamlfile import ConfigFileError


def rules_only(country: str = "NL") -> Scorer:
    return Scorer(default_policy(country).model_copy(update={"model": None}))


RULES = rules_only()


def decide(
    message_id: str,
    text: str,
    *,
    author_role: Role = Role.UNKNOWN,
    language: str | None = None,
    category: str | None = None,
) -> ModerationResult:
    return RULES.decide(message_id, text, author_role=author_role, language=language, category=category)


def score(text: str, *, author_role: Role = Role.UNKNOWN) -> list[Reason]:
    return RULES.score(text, author_role=author_role)[0]


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
    be = rules_only("BE")
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


@pytest.mark.parametrize(
    "text",
    [
        "Bel mij op 06 12 34 56 78 als je hem ziet",
        "Mijn nummer: (06) 1234 5678",
        "tel +32 470/12.34.56",
        "Ruf an: +49 (171) 123 4567",
        "ring me on 07700 900123",
        "Appelez-moi au 06.12.34.56.78 si vous le voyez",
        "bel me: 0470.12.34.56",
        "nummer 0031-6-12345678",
        "mail jan.devries@example.com voor de beelden",
        "bel 06\u200b12345678",
        "bel \uff10\uff16\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",
    ],
)
def test_private_numbers_and_addresses_are_found_in_any_notation(text: str) -> None:
    """Phone numbers with spaces, dots, brackets, slashes or a country code, email
    addresses, and numbers split by zero-width or full-width characters are personal data."""
    assert "privacy" in {r.code for r in RULES.score(normalise_text(text))[0]}


def test_emergency_and_service_numbers_are_not_personal_data() -> None:
    """112, 101, 110 and 0900-8844 may be posted by anyone; nor is a date with a time."""
    for text in ("Bel 112!", "Bel 0900-8844", "101 gebeld", "110 angerufen", "Gezien op 12.05.2026 14.30"):
        assert "privacy" not in {r.code for r in score(text)}


def test_format_characters_are_removed_from_what_is_forwarded() -> None:
    """Zero-width characters and full-width digits are normalised away before scoring."""
    assert normalise_text("06\u200b1234\u00ad5678 \uff21") == "0612345678 A"
    assert len(normalise_text("x" * 100_000)) == 16_384


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Dikkat! Kerkstraat'ta iki adam arabaları açmaya çalışıyor, polis 112 arandı.", "tr"),
        ("Uwaga! Dwóch mężczyzn próbuje otworzyć samochody na Kerkstraat, policja wezwana 112.", "pl"),
        ("¡Atención! Dos hombres intentan abrir coches en la calle Kerkstraat, llamamos al 112.", "es"),
    ],
)
def test_a_language_the_policy_does_not_cover_goes_to_review(text: str, language: str) -> None:
    """An alert in Turkish, Polish or Spanish is never forwarded by rule, however alarming
    it sounds: the language is read from the text, no tag needed, and a tag that says
    Dutch does not change it."""
    for tag in (None, "nl"):
        result = decide("m", text, language=tag)
        assert result.decision is Decision.REVIEW and result.language == language
        assert "unsupported_language" in {r.code for r in result.reasons}


def test_the_language_is_read_from_the_text_and_the_explanation_written_in_it() -> None:
    """A message tagged Turkish but written in English is read as English: its words are
    matched and the author told why in English, as a French one is in French."""
    english = decide("m", "Let's go get him ourselves tonight, the police won't do anything", language="tr")
    assert english.language == "en" and english.decision is Decision.REJECT
    assert "unsupported_language" not in {r.code for r in english.reasons}
    assert english.explanation.startswith("Never take the law into your own hands")
    french = decide("m", "On devrait s'organiser ce soir et lui régler son compte nous-mêmes")
    assert french.language == "fr" and french.explanation.startswith("Ne vous faites jamais justice")


def test_without_any_evidence_a_message_goes_to_review_not_forward() -> None:
    """Forward needs positive evidence: a message that triggers no rule is not forwarded."""
    result = decide("m", "Wat vinden jullie van het nieuwe plan van de gemeente?")
    assert result.decision is not Decision.FORWARD


def model_leaning(towards: str, feature: str) -> LinearModel:
    """A tiny model that pushes hard towards one decision when ``feature`` is present."""
    weight = {"forward": (5.0, 0.0, 0.0), "review": (0.0, 5.0, 0.0), "reject": (0.0, 0.0, 5.0)}[towards]
    return LinearModel("test", {feature: weight}, (0.0, 0.0, 0.0))


def test_model_noise_is_rejected_but_never_an_alert_the_rules_found() -> None:
    """The model may reject what the rules found nothing in; where the rules found an
    alert, the most a model's doubt can do is send it to review."""
    scorer = Scorer(default_policy("NL"), model_leaning("reject", "w:zomaar"))
    noise = scorer.decide("m", "Zomaar een berichtje voor de groep")
    assert noise.decision is Decision.REJECT and "not_an_alert" in {r.code for r in noise.reasons}
    assert noise.model is not None and noise.model.strongest == ("w:zomaar",)
    alert = scorer.decide("m", "Zomaar een inbraak bezig bij de buren, 112 gebeld")
    assert alert.decision is Decision.REVIEW and alert.urgent


def test_the_model_alone_does_not_forward_without_being_very_sure() -> None:
    """Without alert words found by the rules the model needs a high probability to forward."""
    weak = Scorer(default_policy("NL"), LinearModel("t", {"w:daar": (1.0, 0.0, 0.0)}, (0.0, 0.0, 0.0)))
    assert weak.decide("m", "Kijk daar eens").decision is Decision.REVIEW
    strong = Scorer(default_policy("NL"), model_leaning("forward", "w:daar"))
    assert strong.decide("m", "Kijk daar eens").decision is Decision.FORWARD


def test_a_categorised_report_is_forwarded_unless_the_rules_find_harm() -> None:
    """An authenticated client's category (a loose paving stone for the municipality)
    makes a message a report; vigilantism or personal data still stop it."""
    stone = decide("m", "Losliggende stoeptegel bij de bushalte", category="loose_paving")
    assert stone.decision is Decision.FORWARD
    assert decide("m", "Pak hem en sla hem in elkaar", category="suspect_fleeing").decision is Decision.REVIEW
    assert decide("m", "Bel 0612345678", category="loose_paving").decision is Decision.REVIEW


@pytest.mark.parametrize(
    ("text", "language", "code"),
    [
        ("Niet om bang te worden, maar goed om te weten", "nl", "urgent_112"),  # en "bang": a shot
        ("De wagen van de recherche staat al dagen in onze straat", "nl", "missing_person"),  # fr: a search
    ],
)
def test_a_word_of_another_language_does_not_collide(text: str, language: str, code: str) -> None:
    """A message is matched against its own language's word lists and only the phrases
    of the others: a single word that means something else elsewhere finds nothing,
    while it still does when the language is unknown."""
    assert code not in {r.code for r in RULES.score(text, language=language)[0]}
    assert code in {r.code for r in RULES.score(text)[0]}


def test_phrases_and_descriptions_of_other_languages_still_match() -> None:
    """People mix languages: a Dutch phrase in an English message ("politie is gebeld")
    and a loanword description ("jogging") are found whatever the language."""
    hits = RULES.score("Guy in a grey jogging trying car doors, politie is gebeld", language="en")[1]
    assert hits.get("police_called") and hits.get("details")


def test_saying_the_police_were_called_is_evidence_the_model_cannot_reject() -> None:
    """A message that says the police or an ambulance were called is a report: however
    sure the model is that it is noise, it goes to a person, never rejected."""
    scorer = Scorer(default_policy("NL"), model_leaning("reject", "w:mann"))
    result = scorer.decide("m", "Mann liegt am Boden, RTW ist gerufen", language="de")
    assert result.decision is Decision.REVIEW


def test_a_call_to_hunt_burglars_is_rejected_although_it_names_the_crime() -> None:
    """Vigilantism names the crime it answers; alert words do not save it. Only a report
    that says the police were called goes to a person instead."""
    scorer = Scorer(default_policy("NL"), model_leaning("review", "w:kerk"))
    hunt = "Verzamelen om 22:00 bij de kerk, we pakken die inbrekers zelf wel als de politie niks doet"
    assert scorer.decide("m", hunt, language="nl").decision is Decision.REJECT
    called = "Inbrekers bij de kerk, 112 gebeld, wie doet mee om ze op te wachten?"
    assert scorer.decide("m", called, language="nl").decision is Decision.REVIEW


def test_an_authority_may_name_the_street_and_speak_of_holidays_but_not_paste_a_number() -> None:
    """The police name the street of a burglary and advise residents who go away; a
    phone number in their message still goes past a person."""
    advice = "Inbraak in de Kasteeldreef vannacht. Gaat u op vakantie? Laat een lichtje branden."
    assert _decide(advice, Role.AUTHORITY)[0] is Decision.FORWARD
    assert _decide("Bel 0612345678 bij tips", Role.AUTHORITY)[0] is Decision.REVIEW


def test_the_model_sees_words_rule_findings_and_shape_but_no_character_grams() -> None:
    """Character n-grams learned the language and the source more than the message; the
    features are words, word pairs, the rules' findings and language-free traits."""
    found = features("Om 14:30 twee mannen bij nr 5?! 🚨", {"hit:details"}, "resident", "nl")
    assert {"w:mannen", "b:twee mannen", "r:hit:details", "s:time", "s:question", "s:emoji"} <= found
    assert not any(f.startswith("c:") for f in found)


def test_rejection_wants_noise_the_rules_found_or_a_very_sure_model() -> None:
    """As forward needs evidence of an alert, reject needs evidence of noise: where the
    rules found none, a model fairly sure of noise (about 0.79) sends it to a person;
    where they found some (a sale), the same model rejects it."""
    fairly = Scorer(default_policy("NL"), LinearModel("t", {"w:fiets": (0.0, 0.0, 2.0)}, (0.0, 0.0, 0.0)))
    assert fairly.decide("m", "Die fiets daar", language="nl").decision is Decision.REVIEW
    assert fairly.decide("m", "Te koop: fiets", language="nl").decision is Decision.REJECT


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (
            "ALERTE ENLEVEMENT : une petite de 3 ans a ete enlevee par un homme conduisant un camion gris, "
            "fais tourner ce message",
            "fr",
        ),
        ("Kind entführt! Weißer Transporter, zwei Männer. Bitte teilen!!", "de"),
        ("Two men attacked a woman with a knife near the park, warn others", "en"),
    ],
)
def test_a_message_asking_to_be_passed_on_is_never_forwarded_by_the_model(text: str, language: str) -> None:
    """Hoaxes travel with alert words and a request to pass them on; however sure the
    model is of an alert, such a message from a resident goes to a person at most."""
    scorer = Scorer(default_policy("NL"), LinearModel("t", {f"lang:{language}": (9.0, 0.0, 0.0)}, (0, 0, 0)))
    result = scorer.decide("m", text, author_role=Role.RESIDENT, language=language)
    assert "chain_message" in {r.code for r in result.reasons}
    assert result.decision is not Decision.FORWARD


def test_the_model_reads_words_without_accents_and_by_their_first_letters() -> None:
    """People type "enleve" as often as "enlevé": accents are dropped before the words
    are counted, and a longer word also counts by its first five letters, so that
    "cambrioleurs" and "cambriolage", "Einbrecher" and "Einbruch" share a feature."""
    accented = features("Enlevé près de l'école", set(), "resident", "fr")
    plain = features("Enleve pres de l'ecole", set(), "resident", "fr")
    words = ("w:", "p:")
    assert {f for f in accented if f.startswith(words)} == {f for f in plain if f.startswith(words)}
    assert "p:cambr" in features("cambrioleurs", set(), "resident", "fr") & features(
        "cambriolage", set(), "resident", "fr"
    )
    assert "p:einbr" in features("Einbrecher", set(), "resident", "de") & features(
        "Einbruch bei Nachbarn", set(), "resident", "de"
    )


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Belachelijk dat de politie niks doet, wat een schande", "nl"),
        ("Que fait la police ? C'est une honte, ras le bol", "fr"),
        ("Unglaublich, die Polizei macht nichts. Eine Schande!", "de"),
        ("Shame on you, where are the police? Ridiculous", "en"),
    ],
)
def test_an_opinion_is_noise_in_every_language(text: str, language: str) -> None:
    """Opinions and complaints about the police are not alerts: each language's word
    list finds them (off-topic), so that a model sure of noise may reject them."""
    reasons, hits = RULES.assess(text, language=language)
    assert hits.get("off_topic.opinions")
    assert "off_topic" in {r.code for r in reasons}


def test_the_model_alone_does_not_reject_a_message_that_describes_someone() -> None:
    """A message without alert words that describes a person (a black coat, a white cap)
    reads as a report: however sure the model is of noise, a person looks at it; the
    same model rejects a message that describes nobody."""
    scorer = Scorer(default_policy("NL"), model_leaning("reject", "w:guy"))
    described = "A guy wandering down the street in a black coat and a white cap"
    assert scorer.decide("m", described, language="en").decision is Decision.REVIEW
    assert scorer.decide("m", "Some guy said hello", language="en").decision is Decision.REJECT


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Nu inbraak bezig aan de Dorpstraat: man met rode jas en zwarte rugzak aan een achterdeur.", "nl"),
        ("Cambriolage en cours rue de la Gare, deux hommes en noir avec une camionnette blanche.", "fr"),
        ("Gerade Einbruch in der Hauptstraße, Mann mit roter Jacke und schwarzem Rucksack.", "de"),
    ],
)
def test_a_crime_happening_now_with_a_description_is_forwarded_despite_the_models_doubt(
    text: str, language: str
) -> None:
    """What, where and who: the evidence an alert needs. A model that doubts between forward
    and review does not hold it back (the reminder to call 112 goes with it); a model sure it
    is noise still sends it to a person, never rejects it."""
    doubting = Scorer(default_policy("NL"), model_leaning("review", "role:resident"))
    result = doubting.decide("m", text, author_role=Role.RESIDENT, language=language)
    assert result.decision is Decision.FORWARD and result.saar_reminder
    noise = Scorer(default_policy("NL"), model_leaning("reject", "role:resident"))
    assert noise.decide("m", text, author_role=Role.RESIDENT, language=language).decision is Decision.REVIEW


def test_the_decision_is_a_pure_cascade_over_signals_and_probabilities() -> None:
    """The same cascade decides at run time and when training chooses thresholds: a
    model sure of noise rejects what the rules found nothing in, its doubt sends a
    message to a person, and alert words keep a message from being rejected."""
    noise = {"forward": 0.05, "review": 0.1, "reject": 0.85}
    doubt = {"forward": 0.3, "review": 0.35, "reject": 0.35}
    t = Thresholds()
    assert cascade(Signals(), noise, t) == (Decision.REJECT, "not_an_alert")
    assert cascade(Signals(), doubt, t) == (Decision.REVIEW, "uncertain")
    assert cascade(Signals(alerted=True), noise, t)[0] is Decision.REVIEW
    assert cascade(Signals(alerted=True), None, t) == (Decision.FORWARD, None)
    assert cascade(Signals(unsafe=True, to_review=True), noise, t)[0] is Decision.REVIEW


def test_a_joke_or_hoax_with_alert_words_is_rejected_only_by_a_very_sure_model() -> None:
    """A joke about a "suspicious" duck or a hoax that asks to be passed on carries alert
    words; where the model's threshold for it is set and reached, it is rejected. Never
    when it says the police were called, never for other noise (off-topic), and not at all
    while the threshold is unset."""
    joke = Signals(alerted=True, to_reject=frozenset({"joke"}))
    sure = {"forward": 0.02, "review": 0.08, "reject": 0.9}
    t = Thresholds(reject_alerted_at=0.8)
    assert cascade(joke, sure, t)[0] is Decision.REJECT
    assert cascade(joke, sure, Thresholds())[0] is Decision.REVIEW
    called = Signals(alerted=True, police_called=True, to_reject=frozenset({"chain_message"}))
    assert cascade(called, sure, t)[0] is Decision.REVIEW
    sale = Signals(alerted=True, to_reject=frozenset({"off_topic"}))
    assert cascade(sale, sure, t)[0] is Decision.REVIEW
    less = {"forward": 0.1, "review": 0.15, "reject": 0.75}
    assert cascade(joke, less, t)[0] is Decision.REVIEW
    # The author of a rejected joke is not told to call 112 first.
    model = LinearModel("t", {"w:eend": (0.0, 0.0, 9.0)}, (0.0, 0.0, 0.0), thresholds=t)
    result = Scorer(default_policy("NL"), model).decide("m", "Verdachte eend steekt over 😂", language="nl")
    assert result.decision is Decision.REJECT and not result.saar_reminder


def test_thresholds_ship_with_the_model_and_a_policy_may_set_its_own() -> None:
    """The shipped model carries the thresholds training chose; a policy that sets one
    of its own wins for that one."""
    model = LinearModel("t", {}, (0.0, 0.0, 0.0), thresholds=Thresholds(reject_unmarked_at=0.65))
    assert LinearModel.from_json(model.to_json()).thresholds.reject_unmarked_at == 0.65
    assert Scorer(default_policy("NL"), model).thresholds.reject_unmarked_at == 0.65
    own = default_policy("NL").model_copy(update={"reject_unmarked_at": 0.9})
    assert Scorer(own, model).thresholds.reject_unmarked_at == 0.9
    shipped = Scorer(default_policy("NL"))
    assert shipped.model is not None and shipped.thresholds == shipped.model.thresholds


@pytest.mark.parametrize(
    ("text", "language", "code"),
    [
        ("Moi aussi", "fr", "reaction_only"),
        ("Ich auch, gruselig", "de", "reaction_only"),
        ("Oh no, how awful", "en", "reaction_only"),
        ("Wat erg, ik ook", "nl", "reaction_only"),
        ("Franchement, c'est pas normal, où va le monde", "fr", "off_topic"),
        ("Ehrlich gesagt, früher war das anders. Heutzutage macht die Polizei nichts", "de", "off_topic"),
        ("To be honest the courts are soft on crime, nothing gets done", "en", "off_topic"),
        ("Eerlijk gezegd wordt het steeds erger hier, niemand doet er iets aan", "nl", "off_topic"),
        ("Bitte weiterleiten, das ist kein Fake!", "de", "chain_message"),
        ("Faites passer, ce n'est pas un canular", "fr", "chain_message"),
        ("Stuur dit door naar al je contacten, dit is echt waar", "nl", "chain_message"),
        ("Il faut se faire justice, la police ne bouge pas", "fr", "vigilantism"),
        ("Wir müssen uns selbst verteidigen, Selbstjustiz ist das Einzige", "de", "vigilantism"),
        ("Time to defend ourselves, locked and loaded", "en", "vigilantism"),
        ("We gaan ze een lesje leren, eigen rechter spelen", "nl", "vigilantism"),
    ],
)
def test_noise_is_found_in_every_language(text: str, language: str, code: str) -> None:
    """Reactions, opinions, chain messages and vigilantism have word lists in each language,
    so that noise in French, German or English is noise the rules found as well."""
    assert code in {r.code for r in RULES.assess(text, language=language)[0]}


def test_deduce_loads_with_the_collector_paused_and_leaves_it_on_with_its_structures_frozen() -> None:
    """deduce's lookup structures (millions of objects) are built without the collector
    scanning them as they grow, then frozen; the collector is on again afterwards."""
    detector = _PrivacyDetector()
    detector.load()
    assert gc.isenabled()
    assert gc.get_freeze_count() > 1_000_000
    assert detector.find("Jan de Vries woont aan de Dorpstraat 12 in Weert")["name"]


def test_loading_deduce_leaves_the_processes_logging_as_it_was() -> None:
    """deduce's import configures the root logger (standard output, DEBUG); a fresh
    process that loads it through us keeps its standard output for its own answers."""
    script = (
        "import logging\n"
        "from buurtalert.moderation.rules import PRIVACY\n"
        "PRIVACY.load()\n"
        "logging.getLogger('pymongo.command').debug('a debug line of a library')\n"
        "root = logging.getLogger()\n"
        "print(len(root.handlers), root.level)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [f"0 {logging.WARNING}"]

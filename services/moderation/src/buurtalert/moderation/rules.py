"""Scoring rules, free of I/O: text in, reasons and a decision out.

This is the walking skeleton's rule set: real rules from the group rules every
buurtpreventie group teaches (SAAR, no reactions or off-topic chatter, never take
the law into your own hands, describe behaviour not ethnicity), kept small. Word
lists match whole tokens or token sequences, never substrings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from buurtalert.shared.models import Decision, ModerationResult, Reason, Role, Span

_TOKEN = re.compile(r"[\w+]+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    start: int
    end: int


def tokenise(text: str) -> list[Token]:
    return [Token(m.group().lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _phrases(*items: str) -> tuple[tuple[str, ...], ...]:
    """Word lists as token sequences, tokenised like the texts they are matched against."""
    return tuple(tuple(t.text for t in tokenise(item)) for item in items)


REACTIONS = frozenset(
    {
        "bedankt",
        "dank",
        "dankjewel",
        "dankje",
        "thanks",
        "top",
        "+1",
        "ok",
        "oke",
        "super",
        "goed",
        "zo",
        "je",
        "jullie",
        "u",
        "wel",
        "allemaal",
        "idd",
        "inderdaad",
        "mooi",
        "fijn",
        "hoor",
    }
)
OFF_TOPIC = _phrases(
    "kat",
    "kater",
    "poes",
    "hond",
    "huisdier",
    "te koop",
    "gevonden",
    "verloren",
    "stroomstoring",
    "barbecue",
    "bbq",
    "feest",
    "buurtfeest",
    "verkiezingen",
    "rommelmarkt",
    "wie heeft",
    "aangeboden",
)
VIGILANTISM = _phrases(
    "pak hem",
    "pakken we",
    "in elkaar",
    "eigen rechter",
    "afrekenen",
    "grijp hem",
    "sla hem",
    "knokken",
    "knuppel",
    "honkbalknuppel",
    "lynchen",
    "opwachten",
    "een lesje",
)
# Skin colour words describe a person only next to a person noun ("zwarte man"),
# not a thing ("zwarte scooter"); origin words describe a person on their own.
_COLOUR_WORDS = ("donker", "donkere", "getint", "getinte", "zwart", "zwarte", "bruin", "bruine", "gekleurde")
_PERSON_NOUNS = ("man", "mannen", "vrouw", "vrouwen", "jongen", "jongens", "meisje", "meisjes", "persoon",
                 "personen", "type", "types", "kerel", "gast", "gasten", "jongeman", "jongemannen")
ETHNICITY = (
    *((colour, noun) for colour in _COLOUR_WORDS for noun in _PERSON_NOUNS),
    *_phrases("allochtoon", "allochtone", "allochtonen", "buitenlander", "buitenlanders", "buitenlandse",
              "marokkaan", "marokkanen", "marokkaanse", "turk", "turken", "turkse", "roma", "zigeuner",
              "zigeuners", "oost-europeaan", "oosteuropeanen", "noord-afrikaan", "noord-afrikaanse",
              "arabier", "arabieren", "afrikaan", "afrikaanse", "antilliaan", "surinamer"),
)
DETAILS = _phrases(
    "jas",
    "jack",
    "capuchon",
    "trui",
    "broek",
    "schoenen",
    "pet",
    "muts",
    "tas",
    "rugzak",
    "lang",
    "klein",
    "groot",
    "dun",
    "dik",
    "tenger",
    "baard",
    "bril",
    "auto",
    "fiets",
    "scooter",
    "busje",
    "kenteken",
    "cm",
    "jaar",
    "haar",
)
URGENT = _phrases(
    "inbraak",
    "inbreker",
    "inbrekers",
    "inbreken",
    "overval",
    "brand",
    "geweld",
    "steelt",
    "stelen",
    "gestolen",
    "nu bezig",
    "op heterdaad",
    "gewapend",
    "mes",
    "vuurwapen",
    "insluiper",
    "ingebroken",
)
CALLED_POLICE = _phrases(
    "112",
    "101",
    "politie gebeld",
    "politie is gebeld",
    "politie ingelicht",
    "0900 8844",
    "politie gewaarschuwd",
    "politie onderweg",
)
PHONE = re.compile(r"(?<!\d)(?:\+31|0031|\+32|0)\s?[1-9](?:[\s-]?\d){7,8}(?!\d)")
EMOJI_ONLY = re.compile(r"^[\W_\s]*$", re.UNICODE)

# Rules that reject outright, and rules that hold for a moderator.
REJECTING = frozenset({"reaction_only", "off_topic", "vigilantism"})
REVIEWING = frozenset({"discrimination", "privacy"})

EXPLANATIONS = {
    "reaction_only": "Reacties zoals bedankt, duimpjes of +1 worden niet doorgestuurd: "
    "de groep is alleen voor meldingen.",
    "off_topic": "Dit bericht past niet in de buurtpreventiegroep (geen huisdieren, "
    "gevonden voorwerpen, verkoop of evenementen).",
    "vigilantism": "Neem het recht nooit in eigen hand. Bel 112 en laat het optreden aan de politie.",
    "discrimination": "Beschrijf gedrag en kenmerken (kleding, lengte, voertuig), "
    "niet afkomst of huidskleur. Een moderator kijkt naar je bericht.",
    "privacy": "Deel geen namen, telefoonnummers of adressen van personen. "
    "Een moderator kijkt naar je bericht.",
}
SAAR_REMINDER = (
    "Denk aan SAAR: bel eerst 112 bij een spoedeisende situatie en meld in de app dat 112 is gebeld."
)


def _find(tokens: list[Token], phrases: Iterable[tuple[str, ...]]) -> list[Span]:
    words = [t.text for t in tokens]
    spans: list[Span] = []
    for phrase in phrases:
        n = len(phrase)
        for i in range(len(words) - n + 1):
            if tuple(words[i : i + n]) == phrase:
                spans.append(Span(start=tokens[i].start, end=tokens[i + n - 1].end, text=" ".join(phrase)))
    return spans


def score(text: str, *, author_role: Role = Role.UNKNOWN) -> list[Reason]:
    """The reasons that apply to ``text``, each with a score and the spans that fired."""
    tokens = tokenise(text)
    reasons: list[Reason] = []
    authority = author_role in (Role.WIJKAGENT, Role.AUTHORITY)

    if not authority:
        if EMOJI_ONLY.match(text) or (tokens and all(t.text in REACTIONS for t in tokens)):
            reasons.append(Reason(code="reaction_only", score=1.0))
        if off := _find(tokens, OFF_TOPIC):
            reasons.append(Reason(code="off_topic", score=min(1.0, 0.6 + 0.2 * len(off)), spans=tuple(off)))
    if violent := _find(tokens, VIGILANTISM):
        reasons.append(Reason(code="vigilantism", score=0.9, spans=tuple(violent)))
    if ethnic := _find(tokens, ETHNICITY):
        details = {s.text for s in _find(tokens, DETAILS)}
        if len(details) < 2:
            reasons.append(Reason(code="discrimination", score=0.8, spans=tuple(ethnic)))
    if phones := [Span(start=m.start(), end=m.end(), text=m.group()) for m in PHONE.finditer(text)]:
        reasons.append(Reason(code="privacy", score=0.7, spans=tuple(phones)))
    if urgent := _find(tokens, URGENT):
        reasons.append(Reason(code="urgent_112", score=0.8, spans=tuple(urgent)))
    return reasons


def decide(
    message_id: str, text: str, *, author_role: Role = Role.UNKNOWN, policy_version: str
) -> ModerationResult:
    reasons = score(text, author_role=author_role)
    codes = {r.code for r in reasons}
    if codes & REJECTING:
        decision = Decision.REJECT
    elif codes & REVIEWING:
        decision = Decision.REVIEW
    else:
        decision = Decision.FORWARD
    saar = "urgent_112" in codes and not _find(tokenise(text), CALLED_POLICE)
    explanation = " ".join(EXPLANATIONS[c] for c in sorted(codes) if c in EXPLANATIONS)
    if saar:
        explanation = f"{explanation} {SAAR_REMINDER}".strip()
    return ModerationResult(
        message_id=message_id,
        decision=decision,
        reasons=tuple(reasons),
        explanation=explanation,
        saar_reminder=saar,
        policy_version=policy_version,
    )

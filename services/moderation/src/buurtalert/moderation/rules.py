"""Scoring rules, free of I/O: a text in, reasons with scores and spans out, and a
decision under the municipality's policy.

Built from the rules every buurtpreventie group teaches (SAAR; only incidents; no
reactions, pets, sales or chatter; never take the law into your own hands;
describe behaviour, not origin) and from Nextdoor's answer to profiling: a
description that mentions skin colour or origin must also give at least two
other distinguishing details. Word lists (policies/words.yaml) are matched as
whole tokens or token sequences in one pass; personal data is found with deduce
(Dutch de-identification) plus patterns for licence plates.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

from buurtalert.moderation.policy import Policy, StrikePolicy, default_policy, word_lists
from buurtalert.shared.models import AUTHORITIES, Decision, MediaRef, ModerationResult, Reason, Role, Span

_TOKEN = re.compile(r"[\w+]+(?:[-'][\w]+)*|[\U0001F300-\U0001FAFF\u2600-\u27BF]", re.UNICODE)
EMOJI_ONLY = re.compile(r"^[\W_\s]*$", re.UNICODE)
_EMOJI = re.compile(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]")
# Dutch and Belgian licence plates: 99-XX-99 style side codes, and 1-ABC-123.
PLATE = re.compile(
    r"\b(?:[A-Z]{2}-?\d{2}-?\d{2}|\d{2}-?\d{2}-?[A-Z]{2}|\d{2}-?[A-Z]{2}-?\d{2}|[A-Z]{2}-?\d{2}-?[A-Z]{2}"
    r"|[A-Z]{2}-?[A-Z]{2}-?\d{2}|\d{2}-?[A-Z]{2}-?[A-Z]{2}|\d{2}-?[A-Z]{3}-?\d|\d-?[A-Z]{3}-?\d{2}"
    r"|[A-Z]{2}-?\d{3}-?[A-Z]|[A-Z]-?\d{3}-?[A-Z]{2}|[A-Z]{3}-?\d{2}-?[A-Z]|\d-?[A-Z]{2}-?\d{3}"
    r"|[1-9]-?[A-Z]{3}-?\d{3})\b"
)
SERVICE_NUMBER = re.compile(r"^(?:0800|0900|112|101)")
PHONE = re.compile(r"(?<![\d-])(?:\+31|0031|\+32|0032|0)\s?[1-9](?:[\s-]?\d){7,8}(?!\d)")

SHORT = 6  # tokens: a message this short with a thank-you or approval is a reaction
NOISE = frozenset({"reaction_only", "off_topic", "joke", "chain_message"})
ALERTS = frozenset({"urgent_112", "suspicious_situation", "missing_person", "police_alert"})

EXPLANATIONS: dict[str, tuple[str, str]] = {
    "reaction_only": (
        "Reacties zoals bedankt, duimpjes of +1 worden niet doorgestuurd: de groep is alleen voor meldingen.",
        "Reactions such as thanks, thumbs-up or +1 are not forwarded: the group is for reports only.",
    ),
    "off_topic": (
        "Dit bericht past niet in de buurtpreventiegroep (geen huisdieren, gevonden voorwerpen, "
        "verkoop, evenementen, politiek of gezellig contact).",
        "This message does not belong in "
        "the neighbourhood-watch group (no pets, lost and found, sales, events, politics or chat).",
    ),
    "joke": ("Grappen horen niet in de buurtpreventiegroep.", "Jokes do not belong in the group."),
    "chain_message": (
        "Kettingberichten en doorgestuurde waarschuwingen worden niet verspreid: vaak kloppen ze niet.",
        "Chain messages and forwarded warnings are not spread: they are often false.",
    ),
    "vigilantism": (
        "Neem het recht nooit in eigen hand. Bel 112 en laat het optreden aan de politie.",
        "Never take the law into your own hands. Call 112 and leave action to the police.",
    ),
    "discrimination": (
        "Beschrijf gedrag en kenmerken (kleding, lengte, voertuig), niet afkomst of "
        "huidskleur alleen. Een moderator kijkt naar je bericht.",
        "Describe behaviour and "
        "details (clothing, height, vehicle), not origin or skin colour alone. A moderator "
        "will look at your message.",
    ),
    "privacy": (
        "Deel geen namen, adressen, telefoonnummers, kentekens met beschuldigingen of foto's van "
        "personen. Een moderator kijkt naar je bericht.",
        "Do not share names, addresses, phone "
        "numbers, number plates with accusations or photos of people. A moderator will look at "
        "your message.",
    ),
    "rumour": (
        "Deel alleen wat je zelf hebt waargenomen, geen vermoedens of geruchten. Een moderator kijkt "
        "naar je bericht.",
        "Share only what you observed yourself, no suspicions or rumours. A "
        "moderator will look at your message.",
    ),
    "saar_missing": (
        "In deze gemeente bel je eerst de politie (101 of 112) voordat je iets in de groep "
        "meldt. Een moderator kijkt naar je bericht.",
        "In this municipality you call the "
        "police (101 or 112) before posting. A moderator will look at your message.",
    ),
}


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    start: int
    end: int


def tokenise(text: str) -> list[Token]:
    return [Token(m.group().lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _phrase(text: str) -> tuple[str, ...]:
    return tuple(t.text for t in tokenise(text))


class PhraseMatcher:
    """Finds many phrases (token sequences) in one pass: phrases are indexed by their
    first token, so each position of the text looks up only its candidates."""

    def __init__(self, lists: Mapping[str, Iterable[str]]) -> None:
        self._index: dict[str, list[tuple[tuple[str, ...], str]]] = defaultdict(list)
        for code, phrases in lists.items():
            for phrase in phrases:
                if tokens := _phrase(phrase):
                    self._index[tokens[0]].append((tokens, code))

    def find(self, tokens: Sequence[Token]) -> dict[str, list[Span]]:
        words = [t.text for t in tokens]
        found: dict[str, list[Span]] = defaultdict(list)
        for i, word in enumerate(words):
            for phrase, code in self._index.get(word, ()):
                n = len(phrase)
                if tuple(words[i : i + n]) == phrase:
                    found[code].append(
                        Span(start=tokens[i].start, end=tokens[i + n - 1].end, text=" ".join(phrase))
                    )
        return found


def _flatten(lists: Mapping[str, Any]) -> dict[str, list[str]]:
    """Grouped lists (off_topic: pets, sales...) count as one code, and each group
    also as ``code.group`` (pets are needed to tell a missing pet from a missing person)."""
    flat: dict[str, list[str]] = {}
    for code, words in lists.items():
        if isinstance(words, dict):
            flat[code] = [w for group in words.values() for w in group]
            flat.update({f"{code}.{group}": list(ws) for group, ws in words.items()})
        else:
            flat[code] = list(words)
    return flat


class _PrivacyDetector:
    """Names, addresses and phone numbers through deduce, loaded on first use
    (building its lookup structures takes a while the first time on a machine)."""

    @cached_property
    def _deduce(self) -> Any:
        from deduce import Deduce

        return Deduce()

    def load(self) -> None:
        """Load deduce now rather than on the first message that needs it."""
        _ = self._deduce

    def find(self, text: str) -> dict[str, list[Span]]:
        found: dict[str, list[Span]] = defaultdict(list)
        if not any(c.isupper() or c.isdigit() for c in text[1:]):
            return found  # nothing deduce could find: no capitals past the first letter, no digits
        for a in self._deduce.deidentify(text).annotations:
            kind = {"persoon": "name", "locatie": "address", "telefoonnummer": "phone"}.get(
                a.tag.split("_")[0]
            )
            if kind is not None:
                start = int(a.start_char)
                found[kind].append(Span(start=start, end=start + len(a.text), text=kind))
        return found


PRIVACY = _PrivacyDetector()


class Scorer:
    """The rules of one policy, compiled once."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        lists = _flatten(word_lists())
        for code, extra in policy.extra_words.items():
            lists[code] = [*lists.get(code, []), *extra]
        colours, nouns = lists.pop("colour_words"), lists.pop("person_nouns")
        lists["ethnicity"] = [f"{c} {n}" for c in colours for n in nouns] + lists.pop("origin_words")
        lists["police_called"] = [*lists["police_called"], *policy.police_numbers]
        self.reactions = frozenset(_phrase(" ".join(lists.pop("reaction_only"))))
        self.matcher = PhraseMatcher(lists)

    def score(
        self, text: str, *, author_role: Role = Role.UNKNOWN, media: Sequence[MediaRef] = ()
    ) -> tuple[list[Reason], bool]:
        """The reasons that apply, and whether the author said the police were called."""
        tokens = tokenise(text)
        hits = self.matcher.find(tokens)
        reasons: list[Reason] = []
        authority = author_role in AUTHORITIES

        def add(code: str, spans: Sequence[Span] = (), base: float = 0.7) -> None:
            reasons.append(
                Reason(
                    code=code,
                    score=round(min(1.0, base + 0.1 * max(len(spans) - 1, 0)), 3),
                    spans=tuple(spans),
                )
            )

        if authority:
            add("police_alert", (), 0.9)
        else:
            short_reaction = (
                len(tokens) <= SHORT
                and bool(hits.get("reaction_core"))
                and not any(hits.get(c) for c in ALERTS)
            )
            if tokens and (
                EMOJI_ONLY.match(text)
                or short_reaction
                or all(t.text in self.reactions or _EMOJI.fullmatch(t.text) for t in tokens)
            ):
                add("reaction_only", (), 1.0)
            for code in ("off_topic", "joke", "chain_message"):
                if hits.get(code):
                    add(code, hits[code])
        if hits.get("vigilantism"):
            add("vigilantism", hits["vigilantism"], 0.8)
        if ethnic := hits.get("ethnicity"):
            details = {
                s.text for s in hits.get("details", ()) if not any(e.start <= s.start < e.end for e in ethnic)
            }
            if len(details) < 2:
                add("discrimination", ethnic, 0.8)
        privacy = self._privacy(text, hits, media)
        if privacy:
            add("privacy", privacy, 0.7)
        accusing = bool(hits.get("accusation"))
        if hits.get("rumour_markers") and accusing and not hits.get("observation_markers"):
            add("rumour", hits["rumour_markers"], 0.7)
        if hits.get("off_topic.pets"):
            hits.pop("missing_person", None)  # "vermiste kat": a missing pet is off-topic, not an alert
        for code in ("urgent_112", "suspicious_situation", "missing_person"):
            if hits.get(code):
                add(code, hits[code], 0.7)
        return reasons, bool(hits.get("police_called"))

    def _privacy(self, text: str, hits: Mapping[str, list[Span]], media: Sequence[MediaRef]) -> list[Span]:
        """Personal data that must not be spread: a private phone number always; a name,
        an address or a licence plate together with an accusation; photos of people
        in a report about a person."""
        found = PRIVACY.find(text)
        phones = [Span(start=m.start(), end=m.end(), text="phone") for m in PHONE.finditer(text)]
        phones += [s for s in found.get("phone", []) if not any(p.start <= s.start < p.end for p in phones)]
        spans = [s for s in phones if not SERVICE_NUMBER.match(text[s.start : s.end])]
        if hits.get("accusation"):
            spans += found.get("name", []) + found.get("address", [])
            spans += [Span(start=m.start(), end=m.end(), text="plate") for m in PLATE.finditer(text)]
        photos = [m for m in media if m.kind in ("image", "video")]
        if photos and (hits.get("ethnicity") or hits.get("accusation") or hits.get("suspicious_situation")):
            spans.append(Span(start=0, end=0, text="photo"))
        return sorted(spans, key=lambda s: s.start)

    def decide(
        self, message_id: str, text: str, *, author_role: Role = Role.UNKNOWN, media: Sequence[MediaRef] = ()
    ) -> ModerationResult:
        reasons, police_called = self.score(text, author_role=author_role, media=media)
        codes = {r.code for r in reasons}
        crime = bool(codes & {"urgent_112", "suspicious_situation"})
        if (
            crime
            and not police_called
            and author_role not in AUTHORITIES
            and self.policy.police_call_required
        ):
            reasons.append(Reason(code="saar_missing", score=0.8))
        acting = [r for r in reasons if (rule := self.policy.rules.get(r.code)) and r.score >= rule.threshold]
        actions = {self.policy.rules[r.code].action: r for r in acting}
        if (
            Decision.REJECT in actions
            and codes & ALERTS
            and all(r.code in NOISE for r in acting if self.policy.rules[r.code].action is Decision.REJECT)
        ):
            # An alert with noise in it ("vermiste hond"?) is for a person to judge, never rejected by rule.
            decision = Decision.REVIEW
        elif Decision.REJECT in actions:
            decision = Decision.REJECT
        elif Decision.REVIEW in actions:
            decision = Decision.REVIEW
        else:
            decision = Decision.FORWARD
        saar = crime and not police_called and author_role not in AUTHORITIES
        shown = [r.code for r in acting if r.code in EXPLANATIONS] if decision is not Decision.FORWARD else []
        nl = " ".join(EXPLANATIONS[c][0] for c in dict.fromkeys(shown))
        en = " ".join(EXPLANATIONS[c][1] for c in dict.fromkeys(shown))
        if saar:
            numbers = "101 (of 112 bij spoed)" if self.policy.country == "BE" else "112"
            nl = f"{nl} Denk aan SAAR: bel eerst {numbers} en meld in de groep dat de politie is gebeld."
            en = f"{en} Remember SAAR: call {numbers} first and say in the group that the police were called."
        return ModerationResult(
            message_id=message_id,
            decision=decision,
            reasons=tuple(reasons),
            explanation=nl.strip(),
            explanation_en=en.strip(),
            saar_reminder=saar,
            policy_version=self.policy.version,
        )


#: What ingest noticed that a person must look at before a message goes anywhere.
HELD_FLAGS = frozenset({"unknown_sender", "unknown_group", "not_a_member", "empty", "contacts_shared"})


def hold_flagged(result: ModerationResult, flags: Sequence[str]) -> ModerationResult:
    """A message ingest flagged (an unknown sender, an unsupported type) is never
    forwarded by rule: it goes to review, with the flags as reasons."""
    held = [f for f in flags if f in HELD_FLAGS or f.startswith("unsupported_type:")]
    if not held:
        return result
    reasons = (*result.reasons, *(Reason(code=f"ingest:{f}", score=1.0) for f in held))
    decision = Decision.REVIEW if result.decision is Decision.FORWARD else result.decision
    return result.model_copy(update={"reasons": reasons, "decision": decision})


_DEFAULT: dict[str, Scorer] = {}


def scorer_for(policy: Policy | None = None, country: str = "NL") -> Scorer:
    """A compiled scorer for ``policy`` (the country default if None), cached by version."""
    policy = policy or default_policy(country)
    if policy.version not in _DEFAULT:
        _DEFAULT[policy.version] = Scorer(policy)
    return _DEFAULT[policy.version]


# --- strikes: what repeated rejections lead to ------------------------------------------


class StrikeOutcome(StrEnum):
    NONE = "none"
    WARNING = "warning"
    REMOVAL_PROPOSED = "removal_proposed"


def outcome(count: int, policy: StrikePolicy) -> StrikeOutcome:
    """What ``count`` live strikes lead to; the proposal is made once, at the threshold."""
    if count == policy.propose_removal_at:
        return StrikeOutcome.REMOVAL_PROPOSED
    if policy.warn_at <= count < policy.propose_removal_at:
        return StrikeOutcome.WARNING
    return StrikeOutcome.NONE


WARNING_NL = (
    "Let op: dit is een waarschuwing. Bij nog een overtreding van de groepsregels stellen we de "
    "beheerder voor je uit de groep te verwijderen."
)
WARNING_EN = (
    "Please note: this is a warning. If the group rules are broken again, we will propose to the "
    "admin that you are removed from the group."
)

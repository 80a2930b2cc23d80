"""Scoring rules, free of I/O: a text in, reasons with scores and spans out, and a
decision under the municipality's policy, together with the learned model
(:mod:`buurtalert.moderation.model`).

Built from the rules every buurtpreventie group teaches (SAAR; only incidents; no
reactions, pets, sales or chatter; never take the law into your own hands;
describe behaviour, not origin) and from Nextdoor's answer to profiling: a
description that mentions skin colour or origin must also give at least two
other distinguishing details. Word lists in Dutch, French, German and English
(policies/words/) are matched as whole tokens or token sequences in one pass;
phone numbers and email addresses by pattern, names and addresses with deduce
(Dutch de-identification), licence plates by pattern.

Forward needs positive evidence: a message is forwarded only when the rules find
an alert (or the model is very sure of one) and nothing unsafe; noise is rejected
with an explanation; anything uncertain goes to a person.
"""

from __future__ import annotations

import gc
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

from buurtalert.moderation.language import language_of
from buurtalert.moderation.model import LinearModel, Thresholds, features, normalise_text, packaged_model
from buurtalert.moderation.policy import (
    WORD_LANGUAGES,
    Policy,
    StrikePolicy,
    default_policy,
    language_word_lists,
    merge_word_lists,
    word_lists,
)
from buurtalert.shared.models import (
    AUTHORITIES,
    Decision,
    MediaRef,
    ModelFinding,
    ModeratedMessage,
    ModerationResult,
    Reason,
    ReviewAction,
    ReviewDecision,
    Role,
    Span,
)
from buurtalert.shared.texts import line

_TOKEN = re.compile(r"[\w+]+(?:[-'’][\w]+)*|[\U0001F300-\U0001FAFF\u2600-\u27BF]", re.UNICODE)
EMOJI_ONLY = re.compile(r"^[\W_\s]*$", re.UNICODE)
_EMOJI = re.compile(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]")
# Dutch and Belgian licence plates: 99-XX-99 style side codes, and 1-ABC-123.
PLATE = re.compile(
    r"\b(?:[A-Z]{2}-?\d{2}-?\d{2}|\d{2}-?\d{2}-?[A-Z]{2}|\d{2}-?[A-Z]{2}-?\d{2}|[A-Z]{2}-?\d{2}-?[A-Z]{2}"
    r"|[A-Z]{2}-?[A-Z]{2}-?\d{2}|\d{2}-?[A-Z]{2}-?[A-Z]{2}|\d{2}-?[A-Z]{3}-?\d|\d-?[A-Z]{3}-?\d{2}"
    r"|[A-Z]{2}-?\d{3}-?[A-Z]|[A-Z]-?\d{3}-?[A-Z]{2}|[A-Z]{3}-?\d{2}-?[A-Z]|\d-?[A-Z]{2}-?\d{3}"
    r"|[1-9]-?[A-Z]{3}-?\d{3})\b"
)
#: Numbers anyone may publish: emergency and police numbers, free and service lines.
SERVICE_NUMBER = re.compile(r"(?:112|101|110|17|999|911|0800\d*|0900\d*|116\d*|0031900\d*|31900\d*)")
#: Phone numbers in the notations people use: +31 6 1234 5678, 0031-6-12345678,
#: (06) 1234 5678, 06.12.34.56.78, 316 12345678, 0470 12 34 56, +32 470/12.34.56,
#: +49 (171) 123 4567, 07700 900123: 9 to 15 digits with at most two separators
#: (spaces, dots, dashes, slashes, brackets) between any two of them.
PHONE = re.compile(r"(?<![\w+])\+?\(?\d(?:[\s./()-]{0,2}\d){8,14}(?!\w)")
#: A date, perhaps with a clock time, that looks like a phone number ("12.05.2026 14.30"):
#: not personal data. Only the whole match: "06.12.34.56.78" is a French mobile number.
_DATE = re.compile(r"\d{1,2}[./-]\d{1,2}[./-](?:\d{2}|\d{4})(?:\s{1,2}\d{1,2}[.:h]?\d{2})?")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")

SHORT = 6  # tokens: a message this short with a thank-you or approval is a reaction
#: Description details (clothing, colours, vehicles, build) that make a message read as a
#: report of someone: the model alone does not reject it.
DESCRIBED = 2
ALERTS = frozenset({"urgent_112", "suspicious_situation", "missing_person", "police_alert"})
#: Reasons an author is told about (the others are for moderators).
EXPLAINED = frozenset(
    {
        "reaction_only",
        "off_topic",
        "joke",
        "chain_message",
        "vigilantism",
        "discrimination",
        "privacy",
        "rumour",
        "saar_missing",
        "vague_alarm",
        "police_operation",
        "unsupported_language",
        "not_an_alert",
        "uncertain",
    }
)


def explanation(codes: Sequence[str], language: str, *, saar: bool, country: str) -> str:
    """What the author is told, in ``language``: one line per reason, and the SAAR
    reminder where the police were not said to be called. Never quotes the message."""
    parts = [line(f"explanation.{code}", language) for code in dict.fromkeys(codes)]
    if saar:
        numbers = "101 / 112" if country == "BE" else "112"
        parts.append(line("saar_reminder", language, numbers=numbers))
    return " ".join(parts)


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
    first token and length, so each position of the text looks up one set per phrase
    length that starts with its token, however many phrases there are."""

    def __init__(self, lists: Mapping[str, Iterable[str]]) -> None:
        index: dict[str, dict[int, dict[tuple[str, ...], set[str]]]] = defaultdict(lambda: defaultdict(dict))
        for code, phrases in lists.items():
            for phrase in phrases:
                if tokens := _phrase(phrase):
                    index[tokens[0]][len(tokens)].setdefault(tokens, set()).add(code)
        self._index = {first: dict(by_length) for first, by_length in index.items()}

    def find(self, tokens: Sequence[Token]) -> dict[str, list[Span]]:
        words = [t.text for t in tokens]
        found: dict[str, list[Span]] = defaultdict(list)
        for i, word in enumerate(words):
            by_length = self._index.get(word)
            if by_length is None:
                continue
            for n, phrases in by_length.items():
                codes = phrases.get(tuple(words[i : i + n]))
                if codes:
                    span = Span(
                        start=tokens[i].start, end=tokens[i + n - 1].end, text=" ".join(words[i : i + n])
                    )
                    for code in codes:
                        found[code].append(span)
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
        # Importing deduce calls logging.basicConfig(stream=sys.stdout, level=DEBUG): in a
        # process whose logging is not configured yet, every library's debug lines would go
        # to standard output (`buurtalert moderate` writes its answers there; the benchmark
        # process logged each database command). The root logger is kept as it was.
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            from deduce import Deduce
        finally:
            root.handlers[:], root.level = handlers, level

        # Its lookup structures are about 4.5 million objects, which live as long as the
        # process: built with the collector paused (each full collection while they grow
        # scans them all: 6.5 s to load instead of 2 s) and then frozen, so no collection
        # scans them again.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return Deduce()
        finally:
            gc.freeze()
            if collecting:
                gc.enable()

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


#: Lists whose single words mean the same in every language: descriptions (brands,
#: loanwords such as "jogging", "pantalon", "puffer") are matched whatever the language.
SHARED_LISTS = frozenset({"details"})


def _phrases_only(lists: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``lists`` that are two words or more (grouped lists kept grouped),
    and all of the lists that are the same in every language (:data:`SHARED_LISTS`)."""

    def keep(words: Iterable[str], shared: bool = False) -> list[str]:
        return [w for w in words if shared or len(_phrase(w)) >= 2]

    return {
        key: {group: keep(ws) for group, ws in words.items()}
        if isinstance(words, dict)
        else keep(words, key in SHARED_LISTS)
        for key, words in lists.items()
    }


def findings(reasons: Sequence[Reason], hits: Mapping[str, Sequence[Span]]) -> set[str]:
    """What the rules found, as the model sees it: the reasons and every word list hit."""
    return {r.code for r in reasons} | {f"hit:{k}" for k, v in hits.items() if v}


@dataclass(frozen=True, slots=True)
class Signals:
    """What the rules found, as the decision weighs it (see :func:`cascade`)."""

    authority: bool = False
    #: Something unsafe coming from anyone, or a phone number or email address (authorities).
    held_from_authority: bool = False
    #: A finding that holds a message for a person (privacy, profiling, rumour...), vague alarm aside.
    unsafe: bool = False
    #: Any finding whose action is review, vague alarm included.
    to_review: bool = False
    #: The findings whose action is reject (noise, vigilantism).
    to_reject: frozenset[str] = frozenset()
    #: Alert words: a crime, a suspicious situation, a missing person, an authority.
    alerted: bool = False
    #: The message says the police, 112 or an ambulance were called.
    police_called: bool = False
    #: Filed by an authenticated client under a category it may use.
    categorised: bool = False
    #: A crime happening now, with the person or vehicle described (two details or more).
    urgent_described: bool = False
    #: Two description details or more (a black coat and a white cap).
    described: bool = False

    @property
    def evidence(self) -> bool:
        """Evidence of an alert: alert words, a report that says the police (or 112, an
        ambulance...) were called, or a category an authenticated client filed it under."""
        return self.alerted or self.police_called or self.categorised


#: Noise the rules found that a message with alert words may still be (a joke about a
#: "suspicious" duck, a hoax that asks to be passed on, "thanks, I saw him too").
NOISE_WITH_ALERT_WORDS = frozenset({"joke", "chain_message", "reaction_only"})


def cascade(
    s: Signals, probabilities: Mapping[str, float] | None, t: Thresholds
) -> tuple[Decision, str | None]:
    """The decision from the rules' signals and the model's probabilities (None: rules
    alone), and the reason it adds (``uncertain``, ``not_an_alert``) if any. Pure, so that
    training can choose the thresholds ``t`` on decisions for messages left out."""
    vigilante = "vigilantism" in s.to_reject
    p_forward = probabilities["forward"] if probabilities else (1.0 if s.evidence else 0.0)
    p_reject = probabilities["reject"] if probabilities else 0.0
    likeliest = max(probabilities, key=probabilities.__getitem__) if probabilities else None
    if s.authority:
        return (Decision.REVIEW if s.held_from_authority else Decision.FORWARD), None
    if vigilante and not (s.police_called or s.categorised or p_forward >= 0.5):
        # Never take the law into your own hands: calls to hunt or confront name the crime
        # they answer ("burglars"), so alert words do not save them; a report that says
        # the police were called, or that the model takes for an alert, goes to a person.
        return Decision.REJECT, None
    if s.unsafe or vigilante:
        return Decision.REVIEW, None
    if s.categorised:
        # Filed under a category the client may use (ingest checks its scope): the
        # rules found nothing unsafe, so it goes where the category takes it.
        return Decision.FORWARD, None
    if s.urgent_described and not s.to_reject and not s.to_review and likeliest != "reject":
        # A crime happening now with the person or vehicle described: what, where and who,
        # the evidence an alert needs, whatever the model's doubt between forward and review.
        return Decision.FORWARD, None
    if probabilities is None:
        # Rules alone: forward an alert they found, reject the noise they found, hold the rest.
        if s.evidence and not s.to_reject and not s.to_review:
            return Decision.FORWARD, None
        if s.to_reject and not s.evidence:
            return Decision.REJECT, None
        return Decision.REVIEW, "uncertain"
    if (
        likeliest == "forward"
        and p_forward >= (t.forward_at if s.evidence else t.forward_unmarked_at)
        and "chain_message" not in s.to_reject
    ):
        # A message that asks to be passed on ("fais tourner", "bitte teilen") is how hoaxes
        # travel: even with alert words in it, it is never forwarded without a person.
        return Decision.FORWARD, None
    if (
        likeliest == "reject"
        and not s.evidence
        and p_reject >= (t.reject_at if s.to_reject else t.reject_unmarked_at)
        and (s.to_reject or not s.described)
    ):
        # Rejection, too, wants evidence: noise the rules found, or a model very sure alone
        # of a message that describes nobody (a coat and a cap are how an alert reads
        # where its alert words are missing: such a message goes to a person).
        return Decision.REJECT, (None if s.to_reject else "not_an_alert")
    if (
        t.reject_alerted_at is not None
        and likeliest == "reject"
        and s.to_reject & NOISE_WITH_ALERT_WORDS
        and not (s.police_called or s.categorised)
        and p_reject >= t.reject_alerted_at
    ):
        # Alert words in a joke ("suspicious duck crossing the road 🦆") or a hoax that asks
        # to be passed on: noise the rules found, which the model is very sure of. A message
        # that says the police were called is never rejected.
        return Decision.REJECT, None
    return Decision.REVIEW, "uncertain"


class Scorer:
    """The rules and the model of one policy, compiled once."""

    def __init__(self, policy: Policy, model: LinearModel | None = None) -> None:
        self.policy = policy
        self.model = model if model is not None else (packaged_model(policy.model) if policy.model else None)
        self.matcher, self.reactions = self._compile(word_lists())
        self._thresholds = self.thresholds
        #: Per language: its own lists, and only the phrases (two words or more) of the
        #: others. A single word is where languages collide ("rode", "kind", "die", "arm");
        #: a phrase rarely is, and people do mix languages ("politie is gebeld").
        self.by_language = {
            language: self._compile(
                merge_word_lists(
                    [
                        language_word_lists(language),
                        *(
                            _phrases_only(language_word_lists(other))
                            for other in WORD_LANGUAGES
                            if other != language
                        ),
                    ]
                )
            )
            for language in WORD_LANGUAGES
        }

    def _compile(self, raw: Mapping[str, Any]) -> tuple[PhraseMatcher, frozenset[str]]:
        lists = _flatten(raw)
        for code, extra in self.policy.extra_words.items():
            lists[code] = [*lists.get(code, []), *extra]
        colours, nouns = lists.pop("colour_words", []), lists.pop("person_nouns", [])
        lists["ethnicity"] = [f"{c} {n}" for c in colours for n in nouns] + [
            f"{n} {c}" for c in colours for n in nouns
        ]
        lists["origin"] = lists.pop("origin_words", [])
        lists["police_called"] = [*lists.get("police_called", []), *self.policy.police_numbers]
        reactions = frozenset(_phrase(" ".join(lists.pop("reaction_only", []))))
        return PhraseMatcher(lists), reactions

    def score(
        self,
        text: str,
        *,
        author_role: Role = Role.UNKNOWN,
        media: Sequence[MediaRef] = (),
        language: str | None = None,
    ) -> tuple[list[Reason], dict[str, list[Span]]]:
        """The reasons that apply to ``text`` (already normalised), and the raw word-list
        hits they came from."""
        tokens = tokenise(text)
        matcher, reactions = self.by_language.get(language or "", (self.matcher, self.reactions))
        hits = matcher.find(tokens)
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

        alert = any(hits.get(c) for c in ALERTS)
        if authority:
            add("police_alert", (), 0.9)
        else:
            short_reaction = len(tokens) <= SHORT and bool(hits.get("reaction_core")) and not alert
            if tokens and (
                EMOJI_ONLY.match(text)
                or short_reaction
                or all(t.text in reactions or _EMOJI.fullmatch(t.text) for t in tokens)
            ):
                add("reaction_only", (), 1.0)
            for code in ("off_topic", "joke", "chain_message"):
                if hits.get(code):
                    add(code, hits[code])
            if hits.get("vague_alarm") and not alert:
                add("vague_alarm", hits["vague_alarm"], 0.6)
        if hits.get("vigilantism"):
            add("vigilantism", hits["vigilantism"], 0.8)
        ethnic = [*hits.get("ethnicity", ()), *hits.get("origin", ())]
        if ethnic:
            details = {
                s.text for s in hits.get("details", ()) if not any(e.start <= s.start < e.end for e in ethnic)
            }
            as_proof = bool(hits.get("origin")) and bool(hits.get("accusation"))
            if len(details) < 2 or as_proof:
                add("discrimination", ethnic, 0.8)
        privacy = self._privacy(text, hits, media)
        if privacy:
            add("privacy", privacy, 0.7)
        accusing = bool(hits.get("accusation"))
        if hits.get("rumour_markers") and accusing and not hits.get("observation_markers"):
            add("rumour", hits["rumour_markers"], 0.7)
        if hits.get("police_operation") and not authority:
            add("police_operation", hits["police_operation"], 0.6)
        if hits.get("off_topic.pets"):
            hits.pop("missing_person", None)  # "vermiste kat": a missing pet is off-topic, not an alert
        for code in ("urgent_112", "suspicious_situation", "missing_person"):
            if hits.get(code):
                add(code, hits[code], 0.7)
        if language is not None and language not in self.policy.languages:
            add("unsupported_language", (), 1.0)
        return reasons, hits

    def assess(
        self,
        text: str,
        *,
        author_role: Role = Role.UNKNOWN,
        media: Sequence[MediaRef] = (),
        language: str | None = None,
    ) -> tuple[list[Reason], dict[str, list[Span]]]:
        """:meth:`score`, and the SAAR rule of the policy: a crime reported without
        saying the police were called, where the policy requires calling first."""
        reasons, hits = self.score(text, author_role=author_role, media=media, language=language)
        codes = {r.code for r in reasons}
        crime = bool(codes & {"urgent_112", "suspicious_situation"})
        if (
            crime
            and not hits.get("police_called")
            and author_role not in AUTHORITIES
            and self.policy.police_call_required
        ):
            reasons.append(Reason(code="saar_missing", score=0.8))
        return reasons, hits

    def _privacy(self, text: str, hits: Mapping[str, list[Span]], media: Sequence[MediaRef]) -> list[Span]:
        """Personal data that must not be spread: a private phone number or an email
        address always; a name, an address or a licence plate together with an
        accusation; asking the group to identify someone; a home said to stand empty;
        a neighbour or a house pointed at as the culprit; photos of people in a report
        about a person. Names and addresses are looked for (deduce) only where there is
        an accusation, the one case they matter."""
        spans = [
            Span(start=m.start(), end=m.end(), text="phone")
            for m in PHONE.finditer(text)
            if not SERVICE_NUMBER.fullmatch(re.sub(r"\D", "", m.group())) and not _DATE.fullmatch(m.group())
        ]
        spans += [Span(start=m.start(), end=m.end(), text="email") for m in EMAIL.finditer(text)]
        accusing = bool(hits.get("accusation"))
        if accusing:
            found = PRIVACY.find(text)
            spans += found.get("name", []) + found.get("address", [])
            spans += [Span(start=m.start(), end=m.end(), text="plate") for m in PLATE.finditer(text)]
        for code in ("identify_request", "empty_home"):
            spans += hits.get(code, [])
        if accusing:
            spans += hits.get("pointing", [])
        photos = [m for m in media if m.kind in ("image", "video")]
        if photos and (hits.get("ethnicity") or accusing or hits.get("suspicious_situation")):
            spans.append(Span(start=0, end=0, text="photo"))
        return sorted(spans, key=lambda s: s.start)

    def signals(
        self,
        reasons: Sequence[Reason],
        hits: Mapping[str, Sequence[Span]],
        *,
        author_role: Role = Role.UNKNOWN,
        category: str | None = None,
    ) -> Signals:
        """What the decision needs of the rules' findings under this policy."""
        codes = {r.code for r in reasons}
        acting = [r for r in reasons if (rule := self.policy.rules.get(r.code)) and r.score >= rule.threshold]
        to_review = [r for r in acting if self.policy.rules[r.code].action is Decision.REVIEW]
        to_reject = frozenset(r.code for r in acting if self.policy.rules[r.code].action is Decision.REJECT)
        # Vague alarm is doubt, not danger: the model weighs it (a chain message that says "let op" is noise).
        unsafe = [r for r in to_review if r.code != "vague_alarm"]
        details = len({s.text for s in hits.get("details", ())})
        return Signals(
            authority=author_role in AUTHORITIES,
            # An authority names the street of a burglary and tells residents what to do when
            # they are away: that is its job. A phone number or an email address in its
            # message still goes past a person (a private number is easily pasted), as does
            # anything else unsafe (profiling, rumour...).
            held_from_authority=any(
                r.code != "privacy" or any(span.text in ("phone", "email") for span in r.spans)
                for r in unsafe
            ),
            unsafe=bool(unsafe),
            to_review=bool(to_review),
            to_reject=to_reject,
            alerted=bool(codes & ALERTS),
            police_called=bool(hits.get("police_called")),
            categorised=category is not None,
            urgent_described="urgent_112" in codes and details >= DESCRIBED,
            described=details >= DESCRIBED,
        )

    @property
    def thresholds(self) -> Thresholds:
        """The model's thresholds, with those the policy sets itself instead."""
        shipped = self.model.thresholds if self.model is not None else Thresholds()
        own = {
            name: value
            for name in Thresholds.model_fields
            if (value := getattr(self.policy, name, None)) is not None
        }
        return shipped.model_copy(update=own) if own else shipped

    def decide(
        self,
        message_id: str,
        text: str,
        *,
        author_role: Role = Role.UNKNOWN,
        media: Sequence[MediaRef] = (),
        language: str | None = None,
        category: str | None = None,
    ) -> ModerationResult:
        """Forward only what is recognisably an alert and safe; reject clear noise;
        everything uncertain to a person. A genuine alert is never rejected. A report an
        authenticated client filed under a category (a loose paving stone for the
        municipality, a missing person) counts as a report, as alert words do; ingest
        checks that the client may use that category."""
        text = normalise_text(text)
        # Read from the text: a tag that came with the message only counts where the text is unclear.
        language = language_of(text, language)
        reasons, hits = self.assess(text, author_role=author_role, media=media, language=language)
        codes = {r.code for r in reasons}
        police_called = bool(hits.get("police_called"))
        authority = author_role in AUTHORITIES
        crime = bool(codes & {"urgent_112", "suspicious_situation"})
        verdict = None
        if self.model is not None:
            verdict = self.model.verdict(features(text, findings(reasons, hits), author_role.value, language))
        signals = self.signals(reasons, hits, author_role=author_role, category=category)
        decision, added = cascade(signals, verdict.probabilities if verdict else None, self._thresholds)
        if added == "uncertain":
            p = verdict.probabilities if verdict else None
            doubt = 1 - max(p["forward"], p["reject"]) if p else 0.5
            reasons.append(Reason(code="uncertain", score=round(doubt, 3)))
        elif added == "not_an_alert" and verdict is not None:
            reasons.append(Reason(code="not_an_alert", score=round(verdict.probabilities["reject"], 3)))
        # The reminder to call 112 first goes with a report, and with a call to take the law
        # into one's own hands (call the police instead); not with a joke or a hoax rejected
        # although it carried alert words.
        saar = (
            crime
            and not police_called
            and not authority
            and (decision is not Decision.REJECT or "vigilantism" in signals.to_reject)
        )
        urgent = decision is Decision.REVIEW and (
            bool(codes & {"urgent_112", "missing_person", "police_alert"}) or police_called
        )
        shown = [] if decision is Decision.FORWARD else [r.code for r in reasons if r.code in EXPLAINED]
        return ModerationResult(
            message_id=message_id,
            decision=decision,
            reasons=tuple(reasons),
            explanation=explanation(shown, language or "nl", saar=saar, country=self.policy.country),
            explanation_en=explanation(shown, "en", saar=saar, country=self.policy.country),
            language=language,
            saar_reminder=saar,
            urgent=urgent,
            policy_version=self.policy.version,
            model=ModelFinding(
                version=self.model.version if self.model else "",
                probabilities={c: round(p, 4) for c, p in verdict.probabilities.items()},
                strongest=verdict.strongest,
            )
            if verdict
            else None,
        )


#: What ingest noticed that a person must look at before a message goes anywhere.
HELD_FLAGS = frozenset(
    {"unknown_sender", "unverified_sender", "unknown_group", "not_a_member", "empty", "contacts_shared"}
)


def hold_flagged(result: ModerationResult, flags: Sequence[str]) -> ModerationResult:
    """A message ingest flagged (an unknown sender, an unsupported type) is never
    forwarded by rule: it goes to review, with the flags as reasons."""
    held = [f for f in flags if f in HELD_FLAGS or f.startswith("unsupported_type:")]
    if not held:
        return result
    reasons = (*result.reasons, *(Reason(code=f"ingest:{f}", score=1.0) for f in held))
    decision = Decision.REVIEW if result.decision is Decision.FORWARD else result.decision
    return result.model_copy(update={"reasons": reasons, "decision": decision})


def decided_by_person(decision: ReviewDecision) -> ModeratedMessage | None:
    """What a person's decision on a held message makes of it: forwarded (with the edited
    text, normalised as moderation's own output is) or rejected with the explanation the
    person chose. None for a decision that is not about a held message."""
    held = decision.item
    if held is None or decision.action not in (
        ReviewAction.APPROVE,
        ReviewAction.APPROVE_EDITED,
        ReviewAction.REJECT,
    ):
        return None
    message = held.message
    if decision.action is ReviewAction.APPROVE_EDITED and decision.text:
        message = message.model_copy(update={"text": normalise_text(decision.text)})
    common = {"reviewer": decision.actor, "decided_at": decision.decided_at}
    if decision.action is ReviewAction.REJECT:
        reason = Reason(code=f"moderator:{decision.reason or 'rejected'}", score=1.0)
        result = held.moderation.model_copy(
            update={
                **common,
                "decision": Decision.REJECT,
                "reasons": (*held.moderation.reasons, reason),
                "explanation": decision.explanation,
                "explanation_en": decision.explanation_en,
                "urgent": False,
            }
        )
    else:
        result = held.moderation.model_copy(
            update={**common, "decision": Decision.FORWARD, "explanation": "", "explanation_en": ""}
        )
    return ModeratedMessage(message=message, moderation=result)


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

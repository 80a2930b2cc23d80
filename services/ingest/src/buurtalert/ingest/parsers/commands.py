"""Commands a group member writes in a group rather than reports: ``UITKOMST <incident>
<outcome> [note]`` (or ``OUTCOME``, ``RESULTAT``, ``ERGEBNIS``) gives an incident its outcome.
Pure: ingest only reads the command; whether the sender may give it is the review
service's to decide (by the sender's verified role in that regiegroep)."""

from __future__ import annotations

import re

from buurtalert.shared.models import InboundMessage, OutcomeCommand, OutcomeKind

#: The command's first word, in Dutch, English, French and German.
KEYWORDS = ("uitkomst", "outcome", "résultat", "resultat", "ergebnis")
COMMAND = re.compile(r"^\s*(?:" + "|".join(KEYWORDS) + r")\b[:\s]*(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
MAX_NOTE = 500

#: The words for each outcome (``-`` and ``_`` are the same); the enum's own values count too.
OUTCOME_WORDS: dict[str, OutcomeKind] = {
    **{kind.value.replace("_", "-"): kind for kind in OutcomeKind},
    "aanhouding": OutcomeKind.ARREST,
    "aangehouden": OutcomeKind.ARREST,
    "arrestatie": OutcomeKind.ARREST,
    "arrestation": OutcomeKind.ARREST,
    "festnahme": OutcomeKind.ARREST,
    "politie": OutcomeKind.POLICE_ON_SITE,
    "politie-ter-plaatse": OutcomeKind.POLICE_ON_SITE,
    "ter-plaatse": OutcomeKind.POLICE_ON_SITE,
    "police": OutcomeKind.POLICE_ON_SITE,
    "polizei": OutcomeKind.POLICE_ON_SITE,
    "niets": OutcomeKind.NOTHING_FOUND,
    "niets-gevonden": OutcomeKind.NOTHING_FOUND,
    "nothing": OutcomeKind.NOTHING_FOUND,
    "rien": OutcomeKind.NOTHING_FOUND,
    "nichts": OutcomeKind.NOTHING_FOUND,
    "loos": OutcomeKind.FALSE_ALARM,
    "loos-alarm": OutcomeKind.FALSE_ALARM,
    "vals-alarm": OutcomeKind.FALSE_ALARM,
    "fausse-alerte": OutcomeKind.FALSE_ALARM,
    "fehlalarm": OutcomeKind.FALSE_ALARM,
    "gevonden": OutcomeKind.PERSON_FOUND,
    "persoon-gevonden": OutcomeKind.PERSON_FOUND,
    "found": OutcomeKind.PERSON_FOUND,
    "retrouve": OutcomeKind.PERSON_FOUND,
    "gefunden": OutcomeKind.PERSON_FOUND,
    "gemeente": OutcomeKind.MUNICIPALITY,
    "commune": OutcomeKind.MUNICIPALITY,
    "gemeinde": OutcomeKind.MUNICIPALITY,
    "onbekend": OutcomeKind.UNKNOWN,
    "inconnu": OutcomeKind.UNKNOWN,
    "unbekannt": OutcomeKind.UNKNOWN,
}


def outcome_word(word: str) -> OutcomeKind | None:
    return OUTCOME_WORDS.get(word.strip().lower().replace("_", "-").rstrip(".,:;"))


def outcome_command(message: InboundMessage) -> OutcomeCommand | None:
    """The outcome command ``message`` is, if it is one (a message posted in a group that
    starts with the keyword); None for any other message. A command that cannot be read
    is still a command: it carries its ``problem``, so it is kept with the reason rather
    than forwarded as a report."""
    if message.group_id is None:
        return None
    found = COMMAND.match(message.text)
    if found is None:
        return None
    words = found["rest"].split(None, 2)
    ref = words[0] if words else ""
    outcome = outcome_word(words[1]) if len(words) > 1 else None
    note = " ".join(words[2].split())[:MAX_NOTE] if len(words) > 2 else ""
    problem = None
    if not ref:
        problem = "no incident given"
    elif len(words) < 2:
        problem = "no outcome given"
    elif outcome is None:
        problem = "unknown outcome word"
    return OutcomeCommand(
        id=message.id,
        municipality=message.municipality,
        group_id=message.group_id,
        author=message.author,
        channel=message.provider.channel,
        incident_ref=ref[:128],
        outcome=outcome,
        note=note,
        problem=problem,
        sent_at=message.sent_at,
        raw_ref=message.raw_ref,
    )

"""Effect's own words in the console (Dutch first, English available), beside the
console's :mod:`buurtalert.review.texts`."""

from __future__ import annotations

from buurtalert.review.texts import DEFAULT

STRINGS: dict[str, dict[str, str]] = {
    "incidents": {"nl": "Incidenten", "en": "Incidents"},
    "incident": {"nl": "Incident", "en": "Incident"},
    "district": {"nl": "Wijk", "en": "District"},
    "opened": {"nl": "Eerste melding", "en": "First report"},
    "groups_reached": {"nl": "Groepen bereikt", "en": "Groups reached"},
    "outcome": {"nl": "Afloop", "en": "Outcome"},
    "no_outcome": {"nl": "Nog geen afloop", "en": "No outcome yet"},
    "give_outcome": {"nl": "Afloop vastleggen", "en": "Record the outcome"},
    "note": {"nl": "Korte toelichting (optioneel)", "en": "Short note (optional)"},
    "save": {"nl": "Vastleggen en groepen informeren", "en": "Record and tell the groups"},
    "given_by": {"nl": "vastgelegd door", "en": "recorded by"},
    "outcome_given": {
        "nl": "De afloop is vastgelegd; de groepen die de melding kregen horen hem.",
        "en": "The outcome is recorded; the groups that got the report will hear it.",
    },
    "already_given": {
        "nl": "Dit incident heeft al een afloop.",
        "en": "This incident has an outcome already.",
    },
    "not_allowed": {
        "nl": "Alleen de wijkagent, een coördinator of de gemeente legt een afloop vast.",
        "en": "Only the wijkagent, a coordinator or the municipality records an outcome.",
    },
    "command_hint": {
        "nl": "In de regiegroep: UITKOMST {id} "
        "aanhouding|politie|niets|loos|gevonden|gemeente|onbekend [toelichting]",
        "en": "In the regiegroep: OUTCOME {id} "
        "arrest|police|nothing|false-alarm|found|municipality|unknown [note]",
    },
    "none": {"nl": "Geen incidenten.", "en": "No incidents."},
    "polls": {"nl": "Peilingen", "en": "Polls"},
    "no_polls": {
        "nl": "Nog geen peilingen. Een peiling start met: buurtalert effect poll create",
        "en": "No polls yet. A poll starts with: buurtalert effect poll create",
    },
    "poll_closes": {"nl": "open tot", "en": "open until"},
    "poll.answer": {"nl": "antwoord", "en": "answer"},
    "poll.count": {"nl": "aantal", "en": "count"},
    "poll.share": {"nl": "aandeel", "en": "share"},
    "poll.answered": {"nl": "antwoorden / uitgenodigd", "en": "answered / invited"},
    "effect": {"nl": "Effect per wijk", "en": "Effect per district"},
    "since": {"nl": "Vanaf", "en": "Since"},
    "show": {"nl": "Tonen", "en": "Show"},
    "csv": {"nl": "Download als CSV", "en": "Download as CSV"},
    "small_rule": {
        "nl": 'Aantallen van 1 tot 4 staan er als "< 5": zo is niemand te herleiden. '
        "Aandelen en cijfers die op zo'n klein aantal rusten worden niet getoond.",
        "en": 'Counts from 1 to 4 are shown as "< 5", so no one can be singled out. '
        "Shares and rates resting on such a small count are not shown.",
    },
    "definitions": {
        "nl": "Meldingen per 1.000 huishoudens per week; SAAR: de melder belde eerst 112/101; "
        "ruis: afgewezen als reactie, off-topic, grap of kettingbericht; reactie: de eerste afsluiting "
        "of afloop van een incident; op tijd beoordeeld: urgent binnen 15 minuten, anders binnen 4 uur.",
        "en": "Reports per 1,000 households per week; SAAR: the reporter called 112/101 first; "
        "noise: rejected as a reaction, off topic, a joke or a chain message; reaction: an incident's "
        "first closing or outcome; reviewed in time: urgent within 15 minutes, others within 4 hours.",
    },
    "col.district": {"nl": "wijk", "en": "district"},
    "col.households": {"nl": "huishoudens", "en": "households"},
    "col.reports": {"nl": "meldingen", "en": "reports"},
    "col.reports/1000 hh": {"nl": "meldingen/1.000 hh", "en": "reports/1,000 hh"},
    "col.alerts": {"nl": "alerts", "en": "alerts"},
    "col.alerts/1000 hh": {"nl": "alerts/1.000 hh", "en": "alerts/1,000 hh"},
    "col.SAAR share": {"nl": "aandeel SAAR", "en": "SAAR share"},
    "col.noise share": {"nl": "aandeel ruis", "en": "noise share"},
    "col.incidents": {"nl": "incidenten", "en": "incidents"},
    "col.with outcome": {"nl": "met afloop", "en": "with outcome"},
    "col.fed back": {"nl": "teruggekoppeld", "en": "fed back"},
    "col.min to reaction": {"nl": "min. tot reactie", "en": "min. to reaction"},
    "col.min to outcome": {"nl": "min. tot afloop", "en": "min. to outcome"},
    "col.review items": {"nl": "beoordeeld", "en": "reviewed"},
    "col.review in time": {"nl": "op tijd beoordeeld", "en": "reviewed in time"},
    "col.crime/month before": {"nl": "misdrijven/maand vóór", "en": "crime/month before"},
    "col.crime/month after": {"nl": "misdrijven/maand na", "en": "crime/month after"},
    "col.outcome mix": {"nl": "afloop", "en": "outcome mix"},
    "col.moderation mix": {"nl": "moderatie", "en": "moderation mix"},
    "col.deliveries (channel/state)": {"nl": "bezorging (kanaal/status)", "en": "deliveries (channel/state)"},
    "chart.reports": {
        "nl": "Meldingen per 1.000 huishoudens, per week",
        "en": "Reports per 1,000 households, by week",
    },
    "chart.alerts": {
        "nl": "Alerts per 1.000 huishoudens, per week",
        "en": "Alerts per 1,000 households, by week",
    },
    "chart.outcomes": {"nl": "Afloop van incidenten per wijk", "en": "Outcomes of incidents per district"},
    "chart.moderation": {"nl": "Moderatie per wijk", "en": "Moderation per district"},
    "outcome.arrest": {"nl": "aanhouding", "en": "arrest"},
    "outcome.police_on_site": {"nl": "politie ter plaatse", "en": "police on site"},
    "outcome.nothing_found": {"nl": "niets aangetroffen", "en": "nothing found"},
    "outcome.false_alarm": {"nl": "loos alarm", "en": "false alarm"},
    "outcome.person_found": {"nl": "persoon gevonden", "en": "person found"},
    "outcome.municipality": {"nl": "opgepakt door de gemeente", "en": "handled by the municipality"},
    "outcome.unknown": {"nl": "onbekend", "en": "unknown"},
}


def effect_text(key: str, language: str) -> str:
    versions = STRINGS.get(key)
    if versions is None:
        return key.split(".", 1)[-1]
    return versions.get(language) or versions[DEFAULT]

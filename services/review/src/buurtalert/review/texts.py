"""The console's own words, per language: Dutch first, English available (a switch on
every page). A message's text is never translated; the explanations an author receives
come from shared/texts.yaml."""

from __future__ import annotations

LANGUAGES = ("nl", "en")
DEFAULT = "nl"

STRINGS: dict[str, dict[str, str]] = {
    "title": {"nl": "Beoordelen", "en": "Review"},
    "queue": {"nl": "Wachtrij", "en": "Queue"},
    "incidents": {"nl": "Incidenten", "en": "Incidents"},
    "effect": {"nl": "Effect per wijk", "en": "Effect per district"},
    "skip": {"nl": "Naar de inhoud", "en": "Skip to content"},
    "login": {"nl": "Inloggen", "en": "Log in"},
    "logout": {"nl": "Uitloggen", "en": "Log out"},
    "username": {"nl": "Gebruikersnaam", "en": "User name"},
    "password": {"nl": "Wachtwoord", "en": "Password"},
    "login_invalid": {
        "nl": "Onbekende naam of verkeerd wachtwoord.",
        "en": "Unknown name or wrong password.",
    },
    "login_locked": {
        "nl": "Te veel mislukte pogingen: dit account is 15 minuten geblokkeerd.",
        "en": "Too many failed attempts: this account is locked for 15 minutes.",
    },
    "language": {"nl": "Taal", "en": "Language"},
    "municipality": {"nl": "Gemeente", "en": "Municipality"},
    "signed_in_as": {"nl": "Ingelogd als", "en": "Signed in as"},
    "filters": {"nl": "Filters", "en": "Filters"},
    "reason": {"nl": "Reden", "en": "Reason"},
    "all_reasons": {"nl": "Alle redenen", "en": "All reasons"},
    "all_groups": {"nl": "Alle groepen", "en": "All groups"},
    "waiting_filter": {"nl": "Wacht", "en": "Waiting"},
    "any_age": {"nl": "hoe kort ook", "en": "any time"},
    "at_least": {"nl": "minstens", "en": "at least"},
    "hours": {"nl": "uur", "en": "hours"},
    "sort": {"nl": "Volgorde", "en": "Order"},
    "oldest_first": {"nl": "oudste eerst", "en": "oldest first"},
    "newest_first": {"nl": "nieuwste eerst", "en": "newest first"},
    "urgent_only": {"nl": "Alleen spoed", "en": "Urgent only"},
    "apply": {"nl": "Toepassen", "en": "Apply"},
    "urgent": {"nl": "Spoed", "en": "Urgent"},
    "waiting": {"nl": "wacht", "en": "waiting"},
    "minutes": {"nl": "min", "en": "min"},
    "channel": {"nl": "Kanaal", "en": "Channel"},
    "group": {"nl": "Groep", "en": "Group"},
    "age": {"nl": "Leeftijd", "en": "Age"},
    "reasons": {"nl": "Redenen", "en": "Reasons"},
    "empty_queue": {"nl": "Niets te beoordelen.", "en": "Nothing to review."},
    "live": {"nl": "Live bijgewerkt", "en": "Updated live"},
    "claimed_by": {"nl": "In behandeling bij", "en": "Being handled by"},
    "claimed_by_you": {"nl": "Jij behandelt dit tot", "en": "You hold this until"},
    "until": {"nl": "tot", "en": "until"},
    "message": {"nl": "Bericht", "en": "Message"},
    "proposal": {"nl": "Voorstel tot verwijderen", "en": "Removal proposal"},
    "approve": {"nl": "Goedkeuren", "en": "Approve"},
    "approve_edited": {"nl": "Bewerkt goedkeuren", "en": "Approve edited"},
    "edit_text": {"nl": "Tekst (bewerk om aan te passen)", "en": "Text (edit to change it)"},
    "reject": {"nl": "Afwijzen", "en": "Reject"},
    "reject_reason": {"nl": "Reden voor afwijzen", "en": "Reason for rejecting"},
    "author_sees": {"nl": "De melder krijgt te lezen", "en": "The author will receive"},
    "release": {"nl": "Vrijgeven", "en": "Release"},
    "back": {"nl": "Terug naar de wachtrij", "en": "Back to the queue"},
    "history": {"nl": "Geschiedenis", "en": "History"},
    "author_role": {"nl": "Rol van de melder", "en": "Author's role"},
    "language_of_text": {"nl": "Taal van het bericht", "en": "Language of the message"},
    "received": {"nl": "Ontvangen", "en": "Received"},
    "member": {"nl": "Lid (pseudoniem)", "en": "Member (pseudonym)"},
    "strikes": {"nl": "Overtredingen", "en": "Strikes"},
    "district": {"nl": "Wijk", "en": "District"},
    "author_pseudonym": {"nl": "Melder (pseudoniem)", "en": "Author (pseudonym)"},
    "strikes_of_author": {
        "nl": "Overtredingen van de melder (bij vasthouden)",
        "en": "Author's strikes (when held)",
    },
    "strikes_unknown": {
        "nl": "niet geteld (alleen bij geverifieerde bewoners)",
        "en": "not counted (verified residents only)",
    },
    "nearby_incidents": {
        "nl": "Incidenten in deze wijk, vanaf 24 uur voor dit bericht",
        "en": "Incidents in this district, from 24 hours before this message",
    },
    "no_nearby_incidents": {
        "nl": "Geen incidenten in deze wijk sinds 24 uur voor dit bericht.",
        "en": "No incidents in this district since 24 hours before this message.",
    },
    "reports_count": {"nl": "meldingen", "en": "reports"},
    "agree": {"nl": "Akkoord met verwijderen", "en": "Agree to remove"},
    "dismiss": {"nl": "Lid behouden", "en": "Keep the member"},
    "agreed_by": {"nl": "Akkoord gegeven door", "en": "Agreed by"},
    "member_rejections": {"nl": "Afwijzingen van dit lid", "en": "This member's rejections"},
    "no_member_rejections": {
        "nl": "Geen afwijzingen meer bekend (verlopen of gewist).",
        "en": "No rejections known any more (expired or erased).",
    },
    "agree_waiting": {
        "nl": "Jij gaf akkoord. Er is nog een tweede beheerder of coördinator nodig.",
        "en": "You agreed. A second admin or coordinator is still needed.",
    },
    "four_eyes": {
        "nl": "Vier ogen: twee verschillende beheerders of coördinatoren moeten akkoord geven.",
        "en": "Four eyes: two different admins or coordinators must agree.",
    },
    "decided": {"nl": "Besloten", "en": "Decided"},
    "decided_by": {"nl": "door", "en": "by"},
    "stale": {
        "nl": "Dit item is intussen gewijzigd. Laad de pagina opnieuw en kijk nog eens.",
        "en": "This item changed in the meantime. Reload the page and look again.",
    },
    "claimed": {"nl": "Iemand anders behandelt dit item:", "en": "Someone else is handling this item:"},
    "already_decided": {"nl": "Over dit item is al besloten.", "en": "This item was already decided."},
    "not_found": {"nl": "Niet gevonden.", "en": "Not found."},
    "forbidden": {"nl": "Dat mag jouw rol niet.", "en": "Your role may not do that."},
    "invalid": {"nl": "Ongeldige invoer.", "en": "Invalid input."},
    "csrf": {
        "nl": "Het formulier is verlopen of niet van ons. Laad de pagina opnieuw.",
        "en": "The form expired or did not come from us. Reload the page.",
    },
    "shortcuts": {"nl": "Sneltoetsen", "en": "Keyboard shortcuts"},
    "shortcut_help": {
        "nl": "j/k: volgende/vorige, o: openen, a: goedkeuren, r: reden kiezen (Enter: afwijzen), "
        "e: bewerken, u: alleen spoed, x: selecteren, z: ongedaan maken, Esc: terug",
        "en": "j/k: next/previous, o: open, a: approve, r: choose a reason (Enter: reject), "
        "e: edit, u: urgent only, x: select, z: undo, Esc: back",
    },
    "done": {"nl": "Verwerkt.", "en": "Done."},
    "photo": {"nl": "foto", "en": "photo"},
    "role.moderator": {"nl": "moderator", "en": "moderator"},
    "role.coordinator": {"nl": "coördinator", "en": "coordinator"},
    "role.wijkagent": {"nl": "wijkagent", "en": "community police officer"},
    "role.admin": {"nl": "beheerder", "en": "admin"},
    "action.approve": {"nl": "goedgekeurd", "en": "approved"},
    "action.approve_edited": {"nl": "bewerkt goedgekeurd", "en": "approved with an edit"},
    "action.reject": {"nl": "afgewezen", "en": "rejected"},
    "action.remove_member": {"nl": "lid verwijderen", "en": "remove the member"},
    "action.keep_member": {"nl": "lid behouden", "en": "keep the member"},
    # membership vetting
    "sections": {"nl": "Onderdelen", "en": "Sections"},
    "members": {"nl": "Aanmeldingen", "en": "Joins"},
    "members_help": {
        "nl": "Leden die zich met AANMELDEN hebben aangemeld. Keur goed (het lid krijgt de huisregels) "
        "of wijs af met een reden (die blijft in het logboek).",
        "en": "Members who asked to join with AANMELDEN. Approve (the member receives the house rules) "
        "or refuse with a reason (kept in the audit trail).",
    },
    "no_pending_joins": {"nl": "Geen aanmeldingen die wachten.", "en": "No joins waiting."},
    "requested": {"nl": "Aangevraagd", "en": "Requested"},
    "vet_reason": {"nl": "Reden (verplicht bij afwijzen)", "en": "Reason (required to refuse)"},
    "approve_join": {"nl": "Goedkeuren", "en": "Approve"},
    "refuse_join": {"nl": "Afwijzen", "en": "Refuse"},
    "join_approved": {"nl": "Aanmelding goedgekeurd.", "en": "Join approved."},
    "join_refused": {"nl": "Aanmelding afgewezen.", "en": "Join refused."},
    # undo window
    "undo": {"nl": "Ongedaan maken", "en": "Undo"},
    "undo_help": {
        "nl": "Wordt over enkele seconden doorgestuurd; tot dan kun je het terugdraaien.",
        "en": "Goes out in a few seconds; until then you can take it back.",
    },
    # escalation and bulk reject
    "escalate": {"nl": "Naar de wijkagent", "en": "Escalate to the wijkagent"},
    "escalate_note": {"nl": "Toelichting voor de wijkagent", "en": "Note for the wijkagent"},
    "escalated": {"nl": "bij wijkagent", "en": "with the wijkagent"},
    "escalated_by": {"nl": "Doorgezet naar de wijkagent door", "en": "Escalated to the wijkagent by"},
    "pick": {"nl": "Selecteren", "en": "Select"},
    "bulk": {"nl": "Meerdere tegelijk afwijzen", "en": "Reject several at once"},
    "bulk_reject": {"nl": "Geselecteerde afwijzen met reden", "en": "Reject the selected with reason"},
    "reject_selected": {"nl": "Selectie afwijzen", "en": "Reject selection"},
    "rejected_count": {"nl": "afgewezen", "en": "rejected"},
    "refused_count": {
        "nl": "niet gelukt (gewijzigd of in behandeling)",
        "en": "not done (changed or claimed)",
    },
    # revealing a contact address
    "reveal_heading": {"nl": "Contactadres", "en": "Contact address"},
    "author": {"nl": "Melder", "en": "Reporter"},
    "reveal_help": {
        "nl": "Het echte adres tonen wordt met je naam en reden vastgelegd.",
        "en": "Showing the real address is recorded with your name and reason.",
    },
    "reveal_why": {"nl": "Waarom heb je het adres nodig?", "en": "Why do you need the address?"},
    "reveal": {"nl": "Adres tonen", "en": "Show address"},
    "revealed": {"nl": "Adres van de melder", "en": "The reporter's address"},
    "no_address": {"nl": "Geen adres bekend voor deze melder.", "en": "No address known for this reporter."},
    # reason codes as moderators read them
    "reason.privacy": {"nl": "privacy", "en": "privacy"},
    "reason.discrimination": {"nl": "discriminatie", "en": "discrimination"},
    "reason.rumour": {"nl": "gerucht", "en": "rumour"},
    "reason.saar_missing": {"nl": "SAAR: politie niet gebeld", "en": "SAAR: police not called"},
    "reason.vague_alarm": {"nl": "vaag alarm", "en": "vague alarm"},
    "reason.police_operation": {"nl": "politieactie", "en": "police operation"},
    "reason.unsupported_language": {"nl": "andere taal", "en": "other language"},
    "reason.uncertain": {"nl": "onzeker", "en": "uncertain"},
    "reason.not_an_alert": {"nl": "geen melding", "en": "not an alert"},
    "reason.off_topic": {"nl": "off-topic", "en": "off topic"},
    "reason.joke": {"nl": "grap", "en": "joke"},
    "reason.chain_message": {"nl": "kettingbericht", "en": "chain message"},
    "reason.vigilantism": {"nl": "eigenrichting", "en": "vigilantism"},
    "reason.reaction_only": {"nl": "alleen reactie", "en": "reaction only"},
    "reason.urgent_112": {"nl": "112 gebeld", "en": "112 called"},
    "reason.suspicious_situation": {"nl": "verdachte situatie", "en": "suspicious situation"},
    "reason.missing_person": {"nl": "vermiste persoon", "en": "missing person"},
    "reason.police_alert": {"nl": "politiebericht", "en": "police alert"},
}


def text(key: str, language: str) -> str:
    """The console's string ``key`` in ``language`` (Dutch where missing); an unknown
    key (a reason code moderation added later) shows as itself."""
    versions = STRINGS.get(key)
    if versions is None:
        return key.split(".", 1)[-1]
    return versions.get(language) or versions[DEFAULT]

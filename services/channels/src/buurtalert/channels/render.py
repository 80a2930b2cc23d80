"""Rendering a delivery's text for a channel, free of I/O. The lines we add (the SAAR
reminder, an explanation) are in the recipients' language; the message itself is
never translated."""

from __future__ import annotations

from buurtalert.shared.models import Delivery, ModeratedMessage
from buurtalert.shared.texts import line

ELLIPSIS = "…"


def render(delivery: Delivery, max_length: int) -> str:
    """The text to send: the message, routing's notice if any (origin, emergency
    numbers), the SAAR reminder where moderation asked for it and the incident's short
    reference for a regiegroep (to give its outcome by a reply), in the delivery's
    language; cut to ``max_length`` characters, never mid-notice."""
    footer = []
    if delivery.notice:
        footer.append(delivery.notice)
    if delivery.saar_reminder:
        footer.append(line("delivery_saar_reminder", delivery.language))
    if delivery.reference:
        footer.append(line("delivery_incident_reference", delivery.language, ref=delivery.reference))
    tail = ("\n\n" + "\n".join(footer)) if footer else ""
    room = max_length - len(tail)
    body = delivery.text
    if len(body) > room:
        body = body[: max(room - len(ELLIPSIS), 0)] + ELLIPSIS
    return (body + tail)[:max_length]


def feedback_subject(item: ModeratedMessage) -> str:
    language = item.message.language
    english = line("not_forwarded_subject", "en")
    own = line("not_forwarded_subject", language)
    return own if own == english else f"{own} / {english}"


def render_feedback(item: ModeratedMessage, explanation: str, explanation_en: str) -> str:
    """The friendly explanation an author gets when their message was not forwarded: in
    the author's language (Dutch when unknown) and in English. It does not quote the
    message: whoever receives it learns nothing the author did not write to us."""
    language = item.message.language or "nl"
    own = f"{line('not_forwarded_intro', language)}\n\n{explanation}"
    english = f"{line('not_forwarded_intro', 'en')}\n\n{explanation_en}"
    # Once when the author's language has no lines of its own (English, Polish: English).
    return own if own == english else f"{own}\n\n--\n{english}"

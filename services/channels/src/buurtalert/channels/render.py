"""Rendering a delivery's text for a channel, free of I/O."""

from __future__ import annotations

from buurtalert.shared.models import Delivery, ModeratedMessage

SAAR_REMINDER_NL = "SAAR: bel bij spoed eerst 112 en meld daarna in de groep dat 112 is gebeld."
ELLIPSIS = "…"


def render(delivery: Delivery, max_length: int) -> str:
    """The text to send: the message, routing's notice if any (origin, emergency
    numbers), and the SAAR reminder where moderation asked for it; cut to
    ``max_length`` characters, never mid-notice."""
    footer = []
    if delivery.notice:
        footer.append(delivery.notice)
    if delivery.saar_reminder:
        footer.append(SAAR_REMINDER_NL)
    tail = ("\n\n" + "\n".join(footer)) if footer else ""
    room = max_length - len(tail)
    body = delivery.text
    if len(body) > room:
        body = body[: max(room - len(ELLIPSIS), 0)] + ELLIPSIS
    return (body + tail)[:max_length]


def render_feedback(item: ModeratedMessage) -> str:
    """The friendly explanation an author gets when their message was not forwarded:
    Dutch first, English after; it quotes the message so the author knows which one."""
    moderation = item.moderation
    return (
        "Je bericht is niet doorgestuurd naar de buurtpreventiegroep.\n\n"
        f"{moderation.explanation}\n\nJe bericht: \u201c{item.message.text}\u201d\n\n"
        "--\nYour message was not forwarded to the neighbourhood-watch group.\n\n"
        f"{moderation.explanation_en}"
    )

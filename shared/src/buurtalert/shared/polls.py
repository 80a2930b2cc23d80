"""A poll's signed token, which the review service puts in each invitation (the ids of
WhatsApp's reply buttons, the link of the emailed form) and ingest checks on every answer:
so an answer is accepted only for a member who was invited, to the poll and district they
were invited to, without ingest storing who was. Free of I/O.

The token is ``<poll>.<district>.<respondent>.<signature>``: ``respondent`` is the member's
pseudonym for this poll alone (a keyed hash of their pseudonym and the poll), so answers
link no two polls and no message; the signature is an HMAC under a key derived from the
municipality's pseudonym key (never the key itself)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from pydantic import SecretStr

#: Where ingest serves a poll's answer form: ``<public_url>/poll?t=<token>`` (in the query
#: string, which the access log leaves out).
FORM_PATH = "/poll"
#: What a WhatsApp reply button's id starts with when it answers a poll.
CHOICE_PREFIX = "poll:"
_POLL_ID = re.compile(r"^pl-[0-9a-f]{12}$")
_SLUG = re.compile(r"^[a-z0-9-]{1,64}$")
_RESPONDENT = re.compile(r"^[0-9a-f]{24}$")
_CHOICE = re.compile(r"^poll:(?P<token>[^:]{1,180}):(?P<option>\d)$")


def _derived(key: SecretStr, purpose: str) -> bytes:
    return hmac.new(key.get_secret_value().encode(), purpose.encode(), hashlib.sha256).digest()


def respondent(key: SecretStr, poll_id: str, pseudonym: str) -> str:
    """The member's pseudonym for ``poll_id`` alone."""
    return hmac.new(
        _derived(key, "buurtalert poll respondent"), f"{poll_id}:{pseudonym}".encode(), hashlib.sha256
    ).hexdigest()[:24]


def _signature(key: SecretStr, payload: str) -> str:
    digest = hmac.new(_derived(key, "buurtalert poll token"), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


@dataclass(frozen=True, slots=True)
class Invitation:
    """Who a token invites: one member (as the poll's respondent) of one district."""

    poll_id: str
    district: str
    respondent: str

    def token(self, key: SecretStr) -> str:
        payload = f"{self.poll_id}.{self.district}.{self.respondent}"
        return f"{payload}.{_signature(key, payload)}"

    def choice_id(self, key: SecretStr, option: int) -> str:
        """The id of a reply button that answers ``option`` (WhatsApp echoes it when tapped)."""
        return f"{CHOICE_PREFIX}{self.token(key)}:{option}"


def read_token(key: SecretStr, token: str) -> Invitation | None:
    """The invitation ``token`` carries, or None when it is malformed or not ours."""
    parts = token.split(".")
    if len(parts) != 4:
        return None
    poll_id, district, who, signature = parts
    if not (_POLL_ID.match(poll_id) and _SLUG.match(district) and _RESPONDENT.match(who)):
        return None
    if not hmac.compare_digest(signature, _signature(key, f"{poll_id}.{district}.{who}")):
        return None
    return Invitation(poll_id, district, who)


def read_choice(key: SecretStr, choice_id: str) -> tuple[Invitation, int] | None:
    """The invitation and option of a tapped button's id, or None when it is no poll's."""
    found = _CHOICE.match(choice_id)
    if found is None:
        return None
    invitation = read_token(key, found["token"])
    return None if invitation is None else (invitation, int(found["option"]))


def form_link(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{FORM_PATH}?t={token}"


def is_poll_choice(choice_id: str | None) -> bool:
    return bool(choice_id) and str(choice_id).startswith(CHOICE_PREFIX)

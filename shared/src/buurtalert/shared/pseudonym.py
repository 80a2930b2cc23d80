"""Pseudonymisation of personal data (GDPR/AVG): phone numbers and email addresses
become a keyed hash per municipality, so the same person gets the same pseudonym
within a municipality and no pseudonym can be reversed without the key."""

from __future__ import annotations

import hashlib
import hmac
import re

import phonenumbers
from pydantic import SecretStr

_NON_DIGITS = re.compile(r"[^\d]")


def e164(number: str, region: str = "NL") -> str | None:
    """``number`` in E.164 without the ``+`` (``31612345678``), read as a number of
    ``region`` when it has no country code (``06 12345678``); None if it is no number."""
    digits = _NON_DIGITS.sub("", number)
    if not digits:
        return None
    text = number.strip()
    if text.startswith("00"):
        candidates = ["+" + digits[2:]]
    elif text.startswith("+"):
        candidates = ["+" + digits]
    elif text.startswith("0"):
        candidates = [digits]  # a national number: 06 12345678
    else:  # WhatsApp writes 31612345678: international, without the '+'
        candidates = ["+" + digits, digits]
    for candidate in candidates:
        try:
            parsed = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed) or (
            candidate is candidates[-1] and phonenumbers.is_possible_number(parsed)
        ):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164).lstrip("+")
    return None


def normalise_address(address: str, region: str = "NL") -> str:
    """Email addresses compare case-insensitively; ids of other platforms
    (``facebook:<id>``) as they are; phone numbers in E.164 (``region`` for a number
    without a country code), so ``06 12345678``, ``+31 6 12345678``,
    ``0031612345678`` and WhatsApp's ``31612345678`` are one."""
    address = address.strip()
    if "@" in address or ":" in address:
        return address.lower()
    found = e164(address, region)
    if found is not None:
        return found
    digits = _NON_DIGITS.sub("", address)
    return digits[2:] if digits.startswith("00") else digits


def pseudonymise(key: SecretStr, address: str, region: str = "NL") -> str:
    """The keyed pseudonym of ``address``; ``region`` is the municipality's country."""
    digest = hmac.new(
        key.get_secret_value().encode(), normalise_address(address, region).encode(), hashlib.sha256
    ).hexdigest()
    return f"p_{digest[:32]}"


def mask(address: str) -> str:
    """An address as it may appear in a log or an error: its last two digits only."""
    digits = _NON_DIGITS.sub("", address)
    return f"…{digits[-2:]}" if len(digits) >= 6 else "…"


_NUMBER = re.compile(r"\+?\d[\d ./-]{5,}\d")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


def redact(text: str) -> str:
    """``text`` (a provider's error, say) without phone numbers or email addresses in it."""
    return _EMAIL.sub("<address>", _NUMBER.sub("<number>", text))

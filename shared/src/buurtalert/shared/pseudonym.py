"""Pseudonymisation of personal data (GDPR/AVG): phone numbers and email addresses
become a keyed hash per municipality, so the same person gets the same pseudonym
within a municipality and no pseudonym can be reversed without the key."""

from __future__ import annotations

import hashlib
import hmac
import re

from pydantic import SecretStr

_NON_DIGITS = re.compile(r"[^\d]")


def normalise_address(address: str) -> str:
    """Email addresses compare case-insensitively; ids of other platforms
    (``facebook:<id>``) as they are; phone numbers by their international digits,
    so ``+31 6 12345678``, ``0031612345678`` and WhatsApp's ``31612345678`` are one."""
    address = address.strip()
    if "@" in address or ":" in address:
        return address.lower()
    digits = _NON_DIGITS.sub("", address)
    if address.startswith("+"):
        return digits
    if digits.startswith("00"):
        return digits[2:]
    return digits


def pseudonymise(key: SecretStr, address: str) -> str:
    digest = hmac.new(
        key.get_secret_value().encode(), normalise_address(address).encode(), hashlib.sha256
    ).hexdigest()
    return f"p_{digest[:32]}"

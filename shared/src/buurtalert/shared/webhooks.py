"""Signed webhooks, as Meta signs them: ``X-Hub-Signature-256: sha256=<hex>``, the
HMAC-SHA256 of the raw body with the app secret. The same scheme signs what our
webhook channel adapter sends, so one function checks both."""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr

SIGNATURE_HEADER = "X-Hub-Signature-256"


def sign(secret: SecretStr, body: bytes) -> str:
    """The header value for ``body``."""
    return "sha256=" + hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()


def signature_problem(secret: SecretStr, body: bytes, header: str | None) -> str | None:
    """None when ``header`` signs ``body``, else why not (safe to show the sender).
    The comparison takes constant time."""
    if not header:
        return f"missing {SIGNATURE_HEADER} header"
    if not header.startswith("sha256="):
        return f"{SIGNATURE_HEADER} must start with sha256="
    if not hmac.compare_digest(header.encode(), sign(secret, body).encode()):
        return f"{SIGNATURE_HEADER} does not match the body"
    return None

"""Signed, expiring tokens for links in emails (verification, reset, unsubscribe)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from mailctl.errors import Invalid


def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    # The purpose is the salt: a reset token can never pass as a verification token.
    return URLSafeTimedSerializer(secret, salt=f"mailctl.{purpose}")


def sign(secret: str, purpose: str, payload: Any) -> str:
    return _serializer(secret, purpose).dumps(payload)


def unsign(secret: str, purpose: str, token: str, *, max_age: int | None = None) -> Any:
    try:
        return _serializer(secret, purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise Invalid("this link has expired") from None
    except BadSignature:
        raise Invalid("this link is not valid") from None


def address_hash(secret: str, address: str) -> str:
    """A keyed hash of an address (case folded): what erasure leaves behind, so counts stay
    right and a suppressed address stays blocked, without the address being readable."""
    key = hashlib.sha256(f"mailctl.address:{secret}".encode()).digest()
    return hmac.new(key, address.strip().lower().encode(), hashlib.sha256).hexdigest()

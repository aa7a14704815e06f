"""Who may post to the relay webhooks: each relay's own proof, checked as it documents it.

- Amazon SNS (SES notifications): an RSA signature over the message's canonical fields, made
  with the certificate at SigningCertURL, which must be https on an sns.*.amazonaws.com host
  (or the certificate of `[hooks] sns_certificate_file`, for a private setup and the tests).
- Postmark: HTTP basic auth on the webhook URL (Postmark signs nothing).
- SendGrid: ECDSA P-256 / SHA-256 over timestamp + body (its "signed event webhook").
- Mailgun: HMAC-SHA256 of timestamp + token with the webhook signing key.
- Generic: HMAC-SHA256 of "TIMESTAMP.BODY" with `[hooks] generic_secret`.

A request is also refused when its signed time is more than `max_age_seconds` away (stale),
and when its token or message id was seen before (a replay: hook_receipts remembers them for
twice that long, after which the time check alone refuses them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from mailctl.config import HooksSettings
from mailctl.db import utcnow
from mailctl.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from mailctl.models import HookReceipt

_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_CERT_TIMEOUT = 10.0
_CERT_MAX_BYTES = 64_000
_certs: dict[str, bytes] = {}  # SigningCertURL -> PEM: SNS signs with few certificates
_certs_lock = threading.Lock()


def off(provider: str) -> NotFound:
    # An endpoint without its key configured does not exist, as far as the world can tell.
    return NotFound(f"no {provider} webhook is configured here")


def check_time(when: float, hooks: HooksSettings, now: float | None = None) -> None:
    now = time.time() if now is None else now
    if abs(now - when) > hooks.max_age_seconds:
        raise Forbidden(
            f"stale request: signed {abs(now - when):.0f}s away from now"
            f" (at most {hooks.max_age_seconds}s)"
        )


def remember(session: Session, *, provider: str, key: str, hooks: HooksSettings) -> None:
    """Record a token or message id; Conflict if it was seen before (a replay)."""
    now = utcnow()
    session.execute(
        delete(HookReceipt).where(
            col(HookReceipt.received_at) < now - timedelta(seconds=2 * hooks.max_age_seconds)
        )
    )
    key = key[:200]
    seen = session.exec(
        select(HookReceipt.id).where(HookReceipt.provider == provider, HookReceipt.key == key)
    ).first()
    if seen is not None:
        raise Conflict("replayed request: this one was received already")
    session.add(HookReceipt(provider=provider, key=key, received_at=now))
    try:
        session.flush()
    except IntegrityError:  # the same request at the same moment, in another process
        raise Conflict("replayed request: this one was received already") from None


def _hmac_hex(key: str, text: bytes) -> str:
    return hmac.new(key.encode(), text, hashlib.sha256).hexdigest()


def check_mailgun(signature: Any, hooks: HooksSettings) -> str:
    """The token of a valid Mailgun signature block (what a replay would repeat)."""
    if not hooks.mailgun_signing_key:
        raise off("Mailgun")
    if not isinstance(signature, dict):
        raise Unauthorized("unsigned request: no signature block")
    timestamp, token, sig = (str(signature.get(k, "")) for k in ("timestamp", "token", "signature"))
    if not (timestamp and token and sig):
        raise Unauthorized("unsigned request: timestamp, token and signature are required")
    expected = _hmac_hex(hooks.mailgun_signing_key, (timestamp + token).encode())
    if not hmac.compare_digest(expected, sig.lower()):
        raise Forbidden("forged request: the signature does not match")
    try:
        check_time(float(timestamp), hooks)
    except ValueError:
        raise Invalid("the signature's timestamp is not a number") from None
    return token


def check_generic(body: bytes, timestamp: str, signature: str, hooks: HooksSettings) -> str:
    """`X-Mailctl-Signature: sha256=HEX` of "TIMESTAMP.BODY"; returns the signature (its
    replay key)."""
    if not hooks.generic_secret:
        raise off("generic")
    if not timestamp or not signature:
        raise Unauthorized("unsigned request: X-Mailctl-Timestamp and X-Mailctl-Signature")
    digest = signature.removeprefix("sha256=").lower()
    expected = _hmac_hex(hooks.generic_secret, timestamp.encode() + b"." + body)
    if not hmac.compare_digest(expected, digest):
        raise Forbidden("forged request: the signature does not match")
    try:
        check_time(float(timestamp), hooks)
    except ValueError:
        raise Invalid("X-Mailctl-Timestamp is not a number") from None
    return digest


def check_postmark(authorization: str, hooks: HooksSettings) -> None:
    if not hooks.postmark_password:
        raise off("Postmark")
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise Unauthorized("unsigned request: HTTP basic auth is required")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("unsigned request: a malformed Authorization header") from None
    good_user = hmac.compare_digest(user.encode(), hooks.postmark_username.encode())
    good_password = hmac.compare_digest(password.encode(), hooks.postmark_password.encode())
    if not (good_user and good_password):
        raise Forbidden("forged request: wrong user or password")


def _sendgrid_key(hooks: HooksSettings) -> Any:
    from cryptography.hazmat.primitives.serialization import (
        load_der_public_key,
        load_pem_public_key,
    )

    text = hooks.sendgrid_public_key.strip()
    try:
        if text.startswith("-----BEGIN"):
            return load_pem_public_key(text.encode())
        return load_der_public_key(base64.b64decode(text))
    except (ValueError, binascii.Error):
        raise Invalid("hooks.sendgrid_public_key is not an ECDSA public key") from None


def check_sendgrid(body: bytes, timestamp: str, signature: str, hooks: HooksSettings) -> str:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if not hooks.sendgrid_public_key:
        raise off("SendGrid")
    if not timestamp or not signature:
        raise Unauthorized("unsigned request: the Twilio-Email-Event-Webhook headers")
    key = _sendgrid_key(hooks)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Invalid("hooks.sendgrid_public_key is not an ECDSA public key")
    try:
        key.verify(
            base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise Forbidden("forged request: the signature does not match") from None
    try:
        check_time(float(timestamp), hooks)
    except ValueError:
        raise Invalid("the timestamp header is not a number") from None
    return signature


# -- Amazon SNS -------------------------------------------------------------------------------

_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SIGNED_FIELDS["UnsubscribeConfirmation"] = _SIGNED_FIELDS["SubscriptionConfirmation"]


def amazon_https(url: str) -> bool:
    """An https URL on an SNS host of amazonaws.com: the only kind ever fetched."""
    parts = urlsplit(url)
    return (
        parts.scheme == "https"
        and bool(_SNS_HOST.match(parts.hostname or ""))
        and (parts.port in (None, 443))
    )


def _sns_certificate(url: str, hooks: HooksSettings) -> bytes:
    if hooks.sns_certificate_file:
        try:
            with open(hooks.sns_certificate_file, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise Invalid(f"cannot read hooks.sns_certificate_file: {exc.strerror}") from None
    if not amazon_https(url) or not urlsplit(url).path.endswith(".pem"):
        raise Forbidden("forged request: SigningCertURL is not an Amazon SNS certificate")
    with _certs_lock:
        cached = _certs.get(url)
    if cached is not None:
        return cached
    try:
        with urllib.request.urlopen(url, timeout=_CERT_TIMEOUT) as response:  # noqa: S310 - https on amazonaws.com only
            pem = bytes(response.read(_CERT_MAX_BYTES))
    except OSError as exc:
        raise Invalid(f"cannot fetch the SNS signing certificate: {exc}") from None
    with _certs_lock:
        _certs[url] = pem
    return pem


def check_sns(message: dict[str, Any], hooks: HooksSettings) -> str:
    """Verify an SNS message (signature versions 1 and 2); returns its MessageId."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    kind = message.get("Type")
    fields = _SIGNED_FIELDS.get(str(kind))
    if fields is None:
        raise Invalid(f"unknown SNS message type {kind!r}")
    signature = message.get("Signature")
    if not signature or not message.get("SigningCertURL"):
        raise Unauthorized("unsigned request: no Signature or SigningCertURL")
    version = str(message.get("SignatureVersion", "1"))
    if version not in ("1", "2"):
        raise Forbidden(f"unknown SNS SignatureVersion {version!r}")
    allowed = [t.strip() for t in hooks.sns_topic_arns.split(",") if t.strip()]
    if allowed and message.get("TopicArn") not in allowed:
        raise Forbidden("this SNS topic is not one of hooks.sns_topic_arns")
    canonical = "".join(
        f"{name}\n{message[name]}\n"
        for name in fields
        if name in message and not (name == "Subject" and message[name] is None)
    ).encode()
    try:
        cert = x509.load_pem_x509_certificate(
            _sns_certificate(str(message["SigningCertURL"]), hooks)
        )
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise Forbidden("forged request: the signing certificate is not RSA")
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS v1 is SHA1
        key.verify(base64.b64decode(str(signature)), canonical, padding.PKCS1v15(), digest)
    except (InvalidSignature, binascii.Error, ValueError):
        raise Forbidden("forged request: the SNS signature does not match") from None
    try:
        sent = datetime.fromisoformat(str(message.get("Timestamp", "")).replace("Z", "+00:00"))
    except ValueError:
        raise Invalid("the SNS Timestamp is not a time") from None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    check_time(sent.timestamp(), hooks)
    return str(message.get("MessageId", ""))

"""API keys: made, listed and revoked by their user; checked on every /api/v1 call.

A key reads `mk_<prefix>_<secret>`. The prefix is public (it is shown in lists, so a person can
tell keys apart) and finds the row; the whole key is compared with the stored digest in
constant time. Only the digest is kept: the key itself is shown once, when it is made.

Why HMAC-SHA256 and not a password hash (argon2, as for passwords): a password hash is slow on
purpose, because passwords are guessable and an attacker with the table tries likely ones. A key
is 256 random bits; nobody can guess it, slow hash or fast, so slowness buys nothing and would
cost every API call tens of milliseconds. Keyed with the app's secret, a stolen copy of the table
alone does not even let anyone test a guess offline. (A changed web secret key therefore
invalidates every API key, as it does every session and emailed link.)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select

from mailctl.db import utcnow
from mailctl.errors import Forbidden, Invalid, NotFound, Unauthorized
from mailctl.models import ApiKey, KeyScope, User
from mailctl.services.access import ensure_active
from mailctl.services.validation import clean_text

KEY_PREFIX = "mk_"
_PREFIX_BYTES = 6  # 8 url-safe characters: enough to find a row, no secret
_SECRET_BYTES = 32
# last_used_at is written at most this often per key: a busy key costs one UPDATE a minute,
# not one per call.
LAST_USED_EVERY = timedelta(seconds=60)
_REFUSED = "the API key is not valid (unknown, revoked, or its user is blocked)"


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    token: str  # the key itself, to show once


@dataclass(frozen=True)
class Caller:
    """Who an API call acts as: the key's user (with that user's role) and the key."""

    user: User
    key_id: int
    scope: str

    @property
    def may_write(self) -> bool:
        return self.scope == KeyScope.write.value


def _digest(secret: str, token: str) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def create_key(
    *, session: Session, actor: User, secret: str, name: str = "", scope: str = "write"
) -> NewKey:
    """A new key for the actor; the token in the answer is the only time it is seen."""
    ensure_active(actor)
    assert actor.id is not None
    try:
        scope = KeyScope(scope).value
    except ValueError:
        raise Invalid(f"unknown scope {scope!r}: use read or write") from None
    label = clean_text(name, field="name", max_len=100, single_line=True)
    prefix = secrets.token_urlsafe(_PREFIX_BYTES).replace("_", "x").replace("-", "y")
    token = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    key = ApiKey(
        user_id=actor.id, name=label, scope=scope, prefix=prefix, digest=_digest(secret, token)
    )
    session.add(key)
    session.flush()
    return NewKey(key, token)


def list_keys(*, session: Session, actor: User) -> Sequence[ApiKey]:
    """The actor's own keys that still work (revoked ones are gone from the list)."""
    ensure_active(actor)
    return session.exec(
        select(ApiKey)
        .where(ApiKey.user_id == actor.id, col(ApiKey.revoked_at).is_(None))
        .order_by(col(ApiKey.id))
    ).all()


def _own_key(session: Session, actor: User, ref: str) -> ApiKey:
    """A key of the actor's by id or by prefix (what the list shows); NotFound otherwise."""
    stmt = select(ApiKey).where(ApiKey.user_id == actor.id, col(ApiKey.revoked_at).is_(None))
    ref = ref.strip()
    if ref.isdigit() and len(ref) < 12:
        stmt = stmt.where(ApiKey.id == int(ref))
    else:
        stmt = stmt.where(ApiKey.prefix == ref.removeprefix(KEY_PREFIX).split("_")[0])
    key = session.exec(stmt).first()
    if key is None:
        raise NotFound(f"API key {ref} not found")
    return key


def revoke_key(*, session: Session, actor: User, ref: str) -> ApiKey:
    """Revoke one of the actor's keys at once; the row stays, so its history does."""
    ensure_active(actor)
    key = _own_key(session, actor, ref)
    key.revoked_at = utcnow()
    session.add(key)
    return key


def _split(token: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    if not token.startswith(KEY_PREFIX) or len(token) > 200:
        return None
    prefix, sep, rest = token[len(KEY_PREFIX) :].partition("_")
    return prefix if sep and prefix and rest else None


def authenticate(*, session: Session, token: str, secret: str) -> Caller:
    """The caller a key stands for; Unauthorized for an unknown, revoked or malformed key and
    for a blocked user's. The digest is compared in constant time, so the answer's timing
    tells nothing about how much of a guess was right."""
    prefix = _split(token)
    key = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first() if prefix else None
    # Compare even when there is no row, so a miss costs the same as a wrong secret.
    stored = key.digest if key is not None else "0" * 64
    matches = hmac.compare_digest(stored, _digest(secret, token))
    if key is None or not matches or key.revoked_at is not None:
        raise Unauthorized(_REFUSED)
    user = session.get(User, key.user_id)
    if user is None or not user.is_active:
        raise Unauthorized(_REFUSED)
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
        key.last_used_at = now
        session.add(key)
    assert key.id is not None
    return Caller(user=user, key_id=key.id, scope=key.scope)


def require_write(caller: Caller) -> None:
    """A read-only key may look, never change."""
    if not caller.may_write:
        raise Forbidden("this API key is read-only")

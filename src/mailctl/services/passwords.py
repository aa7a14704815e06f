"""The password rule and the hash, written once for every place a password is set."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from mailctl.errors import BadPassword

if TYPE_CHECKING:
    from passlib.context import CryptContext

PASSWORD_MIN = 8
PASSWORD_MAX = 1024


@cache
def _hasher() -> CryptContext:
    # Loaded on first use: most commands never touch a password, and passlib with argon2
    # costs a CLI command more than its own work.
    from passlib.context import CryptContext

    # argon2id at OWASP's recommended minimum (19 MiB, 2 passes): no length limit or truncation.
    return CryptContext(
        schemes=["argon2"], argon2__memory_cost=19456, argon2__rounds=2, argon2__parallelism=1
    )


@cache
def _dummy_hash() -> str:
    # Verified against when the email is unknown, so both answers take the same time.
    return str(_hasher().hash("not a real password"))


def check_password(password: str, *, confirm: str | None = None) -> None:
    """BadPassword unless `password` may be set; `confirm` is the form's second copy."""
    if len(password) < PASSWORD_MIN:
        raise BadPassword(f"the password must have at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise BadPassword(f"the password must have at most {PASSWORD_MAX} characters")
    if confirm is not None and password != confirm:
        raise BadPassword("the two passwords differ")


def hash_password(password: str) -> str:
    check_password(password)
    return str(_hasher().hash(password))


def verify_password(password: str, password_hash: str | None) -> bool:
    """Whether the password matches; with no hash (no such account) the same effort is spent."""
    return bool(_hasher().verify(password, password_hash or _dummy_hash())) and bool(password_hash)

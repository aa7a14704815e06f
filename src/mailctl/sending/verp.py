"""The return path of each message (VERP): `LOCAL+TOKEN@DOMAIN`, the token a signed reference
to the ledger row it was sent for, so a bounce maps back to that row however mangled the DSN.

The token is `MAILING.RUN.CLIENT.SIGNATURE` (base 36, lower case, since some MTAs fold the case
of an address) with a 48-bit truncated HMAC-SHA256 keyed by the installation's secret: short
enough for any local part (at most 64 characters), and not guessable, so nobody can suppress an
address of someone else's list by sending a made-up DSN.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from mailctl.config import Settings

_SIG_LEN = 12
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
# Anywhere in a bounce's text: the return path itself, or a header or a line that quotes it.
TOKEN_RE = re.compile(r"\+([0-9a-z]{1,13}\.[0-9a-z]{1,13}\.[0-9a-z]{1,13}\.[0-9a-f]{12})@", re.I)


@dataclass(frozen=True)
class Reference:
    """What a token names: one ledger row, by its run and client."""

    mailing_id: int
    run_id: int
    client_id: int


def _b36(number: int) -> str:
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = _ALPHABET[rest] + digits
        if not number:
            return digits


def _key(secret: str) -> bytes:
    return hashlib.sha256(f"mailctl.verp:{secret}".encode()).digest()


class ReturnPath:
    """Builds and reads return paths with one key; cheap enough to call once per message."""

    def __init__(self, *, secret: str, domain: str, local_part: str, from_address: str) -> None:
        self._key = _key(secret)
        self.domain = domain.strip().lower()
        self.from_address = from_address
        self.local = local_part.strip() or from_address.rpartition("@")[0] or "bounces"

    @classmethod
    def from_settings(cls, settings: Settings) -> ReturnPath:
        return cls(
            secret=settings.web_secret_key(),
            domain=settings.bounces.domain,
            local_part=settings.bounces.local_part,
            from_address=settings.delivery.from_address,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.domain)

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()[:_SIG_LEN]

    def token(self, mailing_id: int, run_id: int, client_id: int) -> str:
        body = f"{_b36(mailing_id)}.{_b36(run_id)}.{_b36(client_id)}"
        return f"{body}.{self._sign(body)}"

    def sender(self, mailing_id: int, run_id: int, client_id: int | None) -> str:
        """The envelope sender (MAIL FROM) for one ledger row; the from address when no
        bounce domain is set."""
        if not self.enabled:
            return self.from_address
        return f"{self.local}+{self.token(mailing_id, run_id, client_id or 0)}@{self.domain}"

    def read(self, token: str) -> Reference | None:
        """The row a token names, or None when it is not one of ours (forged, mangled)."""
        token = token.lower()
        body, _, signature = token.rpartition(".")
        if not hmac.compare_digest(self._sign(body), signature):
            return None
        try:
            mailing, run, client = (int(part, 36) for part in body.split("."))
        except ValueError:
            return None
        return Reference(mailing, run, client)

    def find(self, text: str) -> Reference | None:
        """The first genuine token in a text (headers, a whole DSN), if any."""
        for match in TOKEN_RE.finditer(text):
            found = self.read(match.group(1))
            if found is not None:
                return found
        return None

"""Signed links that go out in mail: unsubscribe today, and any later one (view online, a
confirmation) beside it. Each purpose is its own salt (tokens.py), so a token made for one
never passes as another."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

from mailctl.config import Settings
from mailctl.errors import Invalid
from mailctl.tokens import sign, unsign

UNSUBSCRIBE = "unsubscribe"
VIEW = "view"  # "view in browser": one message as one recipient got it


@dataclass(frozen=True)
class Links:
    """Where links in mail point and how they are signed: the configured address (never a
    request's Host header, which an attacker could set), the secret, and how long a link that
    expires (verification, reset) stays valid. Newsletters and account emails share it."""

    base_url: str
    secret: str
    max_age: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Links:
        return cls(
            base_url=settings.base_url(),
            secret=settings.web_secret_key(),
            max_age=settings.web.token_max_age,
        )

    def url(self, path: str) -> str:
        return self.base_url + path

    def unsubscribe_url(self, client_id: int) -> str:
        return f"{self.base_url}/unsubscribe/{sign(self.secret, UNSUBSCRIBE, client_id)}"

    def web_url(self, message_id: int, client_id: int) -> str:
        return f"{self.base_url}/view/{sign(self.secret, VIEW, [message_id, client_id])}"


def web_url_ids(secret: str, token: str) -> tuple[int, int]:
    """(message id, client id) of a view-in-browser token; Invalid when forged or mangled.
    No max_age, like unsubscribing: an old newsletter's link keeps working."""
    payload = unsign(secret, VIEW, token)
    if (
        not isinstance(payload, list)
        or len(payload) != 2
        or not all(type(x) is int for x in payload)
    ):
        raise Invalid("this link is not valid")
    return payload[0], payload[1]


def unsubscribe_client_id(secret: str, token: str) -> int:
    """The client an unsubscribe token was made for; Invalid when forged or mangled.

    No max_age: an unsubscribe link in an old message must keep working.
    """
    payload = unsign(secret, UNSUBSCRIBE, token)
    if not isinstance(payload, int):
        raise Invalid("this link is not valid")
    return payload


class FastUnsubscribeLinks:
    """The same links as `Links.unsubscribe_url`, at a tenth of the cost, for the sender.

    `tokens.sign` builds a serializer, derives its key and tries zlib on every call: about
    80 us, a quarter of the budget of a message. Here the key is derived once; the token
    (`tokens.unsign` reads it, a test checks) is itsdangerous' own timestamped format.
    """

    purpose = UNSUBSCRIBE

    def __init__(self, links: Links) -> None:
        from itsdangerous import URLSafeTimedSerializer
        from itsdangerous.signer import HMACAlgorithm

        serializer = URLSafeTimedSerializer(links.secret, salt=f"mailctl.{self.purpose}")
        self._signer = serializer.make_signer()
        self._key = self._signer.derive_key()
        algorithm = self._signer.algorithm
        if not isinstance(algorithm, HMACAlgorithm):  # itsdangerous' default; the token needs it
            raise TypeError("links in mail are signed with HMAC")
        self._digest = algorithm.digest_method
        self._prefix = f"{links.base_url}/{self.purpose}/"
        self._second = -1
        self._stamp = b""

    def __call__(self, client_id: int) -> str:
        # An int's JSON never compresses, so the payload is its plain base64.
        return self._url(str(int(client_id)).encode())

    def _url(self, payload_json: bytes) -> str:
        from itsdangerous.encoding import base64_encode, int_to_bytes

        now = int(time.time())
        if now != self._second:
            self._second, self._stamp = now, base64_encode(int_to_bytes(now))
        sep = self._signer.sep
        value = base64_encode(payload_json) + sep + self._stamp
        # hmac.digest: what the signer's algorithm computes, in one call.
        signature = base64_encode(hmac.digest(self._key, value, self._digest))
        return self._prefix + (value + sep + signature).decode("ascii")


class FastViewLinks(FastUnsubscribeLinks):
    """`Links.web_url` at the same low cost (a two-int list's compact JSON is far too short
    for itsdangerous to compress it)."""

    purpose = VIEW

    def view(self, message_id: int, client_id: int) -> str:
        return self._url(f"[{int(message_id)},{int(client_id)}]".encode())

"""Account emails (verification, password reset, "you already have an account").

They go out through the same transport as mailings, one at a time, built as plain-text MIME
with the header helpers of `render`, so no user-typed value can add a header.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from email.utils import formatdate

from mailctl.config import Settings
from mailctl.sending.render import check_header, encode_header, format_address
from mailctl.sending.transport import FAILED, SENT, Outcome, make_transport

log = logging.getLogger(__name__)


def _body(text: str) -> tuple[bytes, str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii() and all(len(line) <= 998 for line in text.split("\n")):
        return text.replace("\n", "\r\n").encode("ascii"), "7bit"
    return base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n"), "base64"


def build_notice(*, settings: Settings, to: str, subject: str, body: str) -> bytes:
    """The message bytes; a line break in the address or subject is refused (HeaderInjection)."""
    delivery = settings.values["delivery"]
    sender = format_address(delivery["from_name"], delivery["from_address"])
    check_header(subject, "the subject")
    domain = str(delivery["from_address"]).rpartition("@")[2] or "localhost"
    payload, cte = _body(body)
    headers = [
        f"From: {sender}",
        f"To: {format_address('', to)}",
        f"Subject: {encode_header(subject)}",
        f"Date: {formatdate(time.time(), usegmt=True)}",
        f"Message-ID: <{time.time_ns()}.{os.getpid()}.{os.urandom(6).hex()}@{domain}>",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        f"Content-Transfer-Encoding: {cte}",
        # RFC 3834: no vacation auto-replies to account mail.
        "Auto-Submitted: auto-generated",
    ]
    data = "\r\n".join(headers).encode() + b"\r\n\r\n" + payload
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def send_notice(*, settings: Settings, to: str, subject: str, body: str) -> Outcome:
    """Send one account email. Never raises: a failure is logged and returned."""
    try:
        data = build_notice(settings=settings, to=to, subject=subject, body=body)
        transport = make_transport(settings)
        try:
            outcome = transport.send(
                sender=settings.get("delivery", "from_address"), recipient=to, data=data
            )
        finally:
            transport.close()
    except Exception as exc:  # the panel must answer whatever the mail server does
        outcome = Outcome(FAILED, None, f"{type(exc).__name__}: {exc}")
    if outcome.status != SENT:
        log.warning("account email to %s not sent: %s", to, outcome.reply)
    return outcome


def send_verification(*, settings: Settings, to: str, link: str) -> Outcome:
    hours = int(settings.get("web", "token_max_age")) // 3600
    return send_notice(
        settings=settings,
        to=to,
        subject="Confirm your email address for mailctl",
        body=(
            "Welcome to mailctl.\n\n"
            "Open this link to confirm your email address and activate your account:\n\n"
            f"{link}\n\n"
            f"The link works once and expires in {hours or 1} hour(s).\n"
            "If you did not register, ignore this message.\n"
        ),
    )


def send_reset(*, settings: Settings, to: str, link: str) -> Outcome:
    hours = int(settings.get("web", "token_max_age")) // 3600
    return send_notice(
        settings=settings,
        to=to,
        subject="Reset your mailctl password",
        body=(
            "Someone (hopefully you) asked to reset the password of your mailctl account.\n\n"
            "Open this link to choose a new password:\n\n"
            f"{link}\n\n"
            f"The link works once and expires in {hours or 1} hour(s).\n"
            "If you did not ask for this, ignore this message: your password stays as it is.\n"
        ),
    )


def send_already_registered(
    *, settings: Settings, to: str, login_url: str, reset_url: str
) -> Outcome:
    return send_notice(
        settings=settings,
        to=to,
        subject="You already have a mailctl account",
        body=(
            "Someone tried to register a mailctl account with this email address, but you\n"
            "already have one.\n\n"
            f"Log in: {login_url}\n"
            f"Forgot your password? {reset_url}\n\n"
            "If this was not you, ignore this message.\n"
        ),
    )

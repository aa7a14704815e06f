"""Account emails (verification, password reset, "you already have an account").

They go out through the same servers as mailings (by priority and weight, failing over to
the next when one is down), one at a time, built by the same MIME builder, so no user-typed
value can add a header.
"""

from __future__ import annotations

import logging

from mailctl.config import Settings
from mailctl.models.delivery import FAILED, SENT
from mailctl.sending.mime import MimeBuilder, encode_text
from mailctl.sending.pool import one_off
from mailctl.sending.transport import Outcome

log = logging.getLogger(__name__)
# RFC 3834: no vacation auto-replies to account mail.
_AUTO = (b"Auto-Submitted: auto-generated",)


def build_notice(*, settings: Settings, to: str, subject: str, body: str) -> bytes:
    """The message bytes; a line break in the address or subject is refused (HeaderInjection)."""
    delivery = settings.delivery
    builder = MimeBuilder(from_address=delivery.from_address, from_name=delivery.from_name)
    return builder.build(
        to_name="", to_address=to, subject=subject, body=encode_text(body), headers=_AUTO
    )


def send_notice(*, settings: Settings, to: str, subject: str, body: str) -> Outcome:
    """Send one account email. Never raises: a failure is logged and returned."""
    try:
        data = build_notice(settings=settings, to=to, subject=subject, body=body)
        transport = one_off(settings)
        try:
            outcome = transport.send(sender=settings.delivery.from_address, recipient=to, data=data)
        finally:
            transport.close()
    except Exception as exc:  # the panel must answer whatever the mail server does
        outcome = Outcome(FAILED, None, f"{type(exc).__name__}: {exc}")
    if outcome.status != SENT:
        log.warning("account email to %s not sent: %s", to, outcome.reply)
    return outcome


def send_verification(*, settings: Settings, to: str, link: str) -> Outcome:
    hours = settings.web.token_max_age // 3600
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
    hours = settings.web.token_max_age // 3600
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

"""What each relay's webhook says, as bounce Reports, recorded through `record_bounce`.

Every `receive_*` checks the request (services/hook_auth.py), remembers its token or id
against replays, and records each event in the caller's transaction; the panel's routes only
hand over the body and the headers. Events that are neither bounces nor complaints
(deliveries, opens, clicks) are counted as ignored.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from mailctl.config import Settings
from mailctl.errors import Invalid
from mailctl.services import hook_auth
from mailctl.services.bounces import Report, Rules, record_bounce

log = logging.getLogger("mailctl.hooks")
MAX_BODY_BYTES = 1_000_000
_MAX_EVENTS = 1000  # SendGrid batches up to about 1000 events (and 768 KB) per request


@dataclass
class Received:
    recorded: int = 0
    ignored: int = 0
    unmatched: int = 0
    duplicates: int = 0
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "recorded": self.recorded,
            "ignored": self.ignored,
            "unmatched": self.unmatched,
            "duplicates": self.duplicates,
        }
        if self.note:
            out["note"] = self.note
        return out


def _json(body: bytes) -> Any:
    if len(body) > MAX_BODY_BYTES:
        raise Invalid(f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("the body is not JSON") from None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any, limit: int = 500) -> str:
    return " ".join(str(value).split())[:limit] if value is not None else ""


def _record(
    session: Session, rules: Rules, reports: list[Report | None], received: Received
) -> Received:
    if len(reports) > _MAX_EVENTS:
        raise Invalid(f"more than {_MAX_EVENTS} events in one request")
    for report in reports:
        if report is None:
            received.ignored += 1
            continue
        if "@" not in report.email:
            raise Invalid("an event has no recipient address")
        result = record_bounce(session, report=report, rules=rules)
        if result.outcome == "recorded":
            received.recorded += 1
        elif result.outcome == "duplicate":
            received.duplicates += 1
        else:
            received.unmatched += 1
    return received


def _token(rules: Rules, return_path: Any) -> Any:
    return rules.return_path.find(str(return_path)) if return_path else None


# -- Amazon SES through SNS -------------------------------------------------------------------


def _ses_reports(rules: Rules, notice: Any, message_id: str) -> list[Report | None]:
    if not isinstance(notice, dict):
        raise Invalid("the SNS Message is not an SES notification")
    kind = notice.get("notificationType") or notice.get("eventType")
    mail = _object(notice.get("mail"))
    reference = _token(rules, mail.get("source"))  # the envelope sender: our VERP address
    ref = str(mail.get("messageId") or message_id)
    if kind == "Bounce":
        bounce = notice.get("bounce")
        if not isinstance(bounce, dict) or not isinstance(bounce.get("bouncedRecipients"), list):
            raise Invalid("an SES bounce without bouncedRecipients")
        hard = bounce.get("bounceType") == "Permanent"
        return [
            Report(
                email=str(r.get("emailAddress", "")),
                kind="hard" if hard else "soft",
                source="ses",
                ref=f"{ref}:{bounce.get('feedbackId', '')}",
                status=_text(r.get("status"), 16),
                reason=_text(r.get("diagnosticCode") or bounce.get("bounceSubType")),
                reference=reference,
            )
            for r in bounce["bouncedRecipients"]
            if isinstance(r, dict)
        ]
    if kind == "Complaint":
        complaint = notice.get("complaint")
        if not isinstance(complaint, dict) or not isinstance(
            complaint.get("complainedRecipients"), list
        ):
            raise Invalid("an SES complaint without complainedRecipients")
        feedback = _text(complaint.get("complaintFeedbackType") or "abuse", 16)
        return [
            Report(
                email=str(r.get("emailAddress", "")),
                kind="complaint",
                source="ses",
                ref=f"{ref}:{complaint.get('feedbackId', '')}",
                status=feedback,
                reason=f"complaint ({feedback})",
                reference=reference,
            )
            for r in complaint["complainedRecipients"]
            if isinstance(r, dict)
        ]
    return [None]  # Delivery, Send, Open...: good news or none of ours


def receive_sns(session: Session, *, settings: Settings, body: bytes) -> Received:
    message = _json(body)
    if not isinstance(message, dict):
        raise Invalid("the body is not an SNS message")
    message_id = hook_auth.check_sns(message, settings.hooks)
    hook_auth.remember(session, provider="sns", key=message_id, hooks=settings.hooks)
    kind = message.get("Type")
    if kind == "SubscriptionConfirmation":
        return Received(note=_confirm(str(message.get("SubscribeURL", ""))))
    if kind == "UnsubscribeConfirmation":
        log.warning("SNS topic %s unsubscribed this endpoint", message.get("TopicArn"))
        return Received(note="unsubscribed")
    try:
        notice = json.loads(str(message.get("Message", "")))
    except ValueError:
        raise Invalid("the SNS Message is not JSON") from None
    rules = Rules.from_settings(settings)
    return _record(session, rules, _ses_reports(rules, notice, message_id), Received())


def _confirm(url: str) -> str:
    """Subscribe by visiting SubscribeURL, only when it is Amazon's; otherwise log it."""
    if not hook_auth.amazon_https(url):
        log.warning("SNS subscription not confirmed: SubscribeURL %r is not Amazon's", url[:300])
        return "subscription not confirmed: the SubscribeURL is not an amazonaws.com https URL"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - amazonaws.com https only
            response.read(64_000)
    except OSError as exc:
        log.warning("SNS subscription not confirmed: %s", exc)
        return f"subscription not confirmed: {exc}"
    log.info("SNS subscription confirmed")
    return "subscription confirmed"


# -- Postmark, SendGrid, Mailgun, generic -----------------------------------------------------

_POSTMARK_HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated", "Blocked"}
_POSTMARK_SOFT = {"SoftBounce", "Transient", "DnsError", "MailFrontier", "AutoResponder"}


def receive_postmark(
    session: Session, *, settings: Settings, body: bytes, authorization: str
) -> Received:
    hook_auth.check_postmark(authorization, settings.hooks)
    event = _json(body)
    if not isinstance(event, dict) or "RecordType" not in event or "ID" not in event:
        raise Invalid("not a Postmark webhook: RecordType and ID are required")
    when = str(event.get("BouncedAt") or "")
    if when:
        try:
            at = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            raise Invalid("BouncedAt is not a time") from None
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        hook_auth.check_time(at.timestamp(), settings.hooks)
    hook_auth.remember(session, provider="postmark", key=str(event["ID"]), hooks=settings.hooks)
    kind = event.get("Type")
    report: Report | None = None
    if event.get("RecordType") in ("Bounce", "SpamComplaint"):
        if kind == "SpamComplaint" or event.get("RecordType") == "SpamComplaint":
            verdict = "complaint"
        elif kind in _POSTMARK_HARD:
            verdict = "hard"
        elif kind in _POSTMARK_SOFT:
            verdict = "soft"
        else:
            verdict = ""
        if verdict:
            report = Report(
                email=str(event.get("Email", "")),
                kind=verdict,
                source="postmark",
                ref=str(event["ID"]),
                status=_text(kind, 16),
                reason=_text(event.get("Details") or event.get("Description")),
            )
    return _record(session, Rules.from_settings(settings), [report], Received())


def receive_sendgrid(
    session: Session, *, settings: Settings, body: bytes, timestamp: str, signature: str
) -> Received:
    key = hook_auth.check_sendgrid(body, timestamp, signature, settings.hooks)
    events = _json(body)
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise Invalid("not a SendGrid event batch: a JSON array of events")
    hook_auth.remember(session, provider="sendgrid", key=key, hooks=settings.hooks)
    reports: list[Report | None] = []
    for event in events:
        name, kind = event.get("event"), event.get("type")
        verdict = (
            "complaint"
            if name == "spamreport"
            else "soft"
            if name == "deferred" or (name == "bounce" and kind == "blocked")
            else "hard"
            if name == "bounce"
            else ""
        )
        reports.append(
            Report(
                email=str(event.get("email", "")),
                kind=verdict,
                source="sendgrid",
                ref=str(event.get("sg_event_id") or f"{timestamp}:{len(reports)}"),
                status=_text(event.get("status"), 16),
                reason=_text(event.get("reason") or event.get("response") or name),
            )
            if verdict
            else None
        )
    return _record(session, Rules.from_settings(settings), reports, Received())


def receive_mailgun(session: Session, *, settings: Settings, body: bytes) -> Received:
    payload = _json(body)
    if not isinstance(payload, dict):
        raise Invalid("not a Mailgun webhook: a JSON object")
    token = hook_auth.check_mailgun(payload.get("signature"), settings.hooks)
    data = payload.get("event-data")
    if not isinstance(data, dict):
        raise Invalid("not a Mailgun webhook: no event-data")
    hook_auth.remember(session, provider="mailgun", key=token, hooks=settings.hooks)
    rules = Rules.from_settings(settings)
    name = data.get("event")
    status = _object(data.get("delivery-status"))
    envelope = _object(data.get("envelope"))
    verdict = (
        "complaint"
        if name == "complained"
        else ("hard" if data.get("severity") == "permanent" else "soft")
        if name == "failed"
        else ""
    )
    report = (
        Report(
            email=str(data.get("recipient", "")),
            kind=verdict,
            source="mailgun",
            ref=str(data.get("id") or token),
            status=_text(status.get("enhanced-code") or status.get("code"), 16),
            reason=_text(status.get("description") or status.get("message") or data.get("reason")),
            reference=_token(rules, envelope.get("sender")),
        )
        if verdict
        else None
    )
    return _record(session, rules, [report], Received())


def receive_generic(
    session: Session, *, settings: Settings, body: bytes, timestamp: str, signature: str
) -> Received:
    """`{"events": [{"id", "type": hard|soft|complaint, "email", "status", "reason",
    "return_path"}]}` (or one such event), signed as hook_auth.check_generic says."""
    key = hook_auth.check_generic(body, timestamp, signature, settings.hooks)
    payload = _json(body)
    events = payload.get("events", [payload]) if isinstance(payload, dict) else None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise Invalid('not a bounce event: an object, or {"events": [...]}')
    hook_auth.remember(session, provider="generic", key=key, hooks=settings.hooks)
    rules = Rules.from_settings(settings)
    reports: list[Report | None] = []
    for event in events:
        kind = event.get("type")
        if kind not in ("hard", "soft", "complaint"):
            raise Invalid(f"unknown event type {kind!r}: use hard, soft or complaint")
        if not event.get("id"):
            raise Invalid("every event needs an id (the same event sent twice counts once)")
        reports.append(
            Report(
                email=str(event.get("email", "")),
                kind=str(kind),
                source="webhook",
                ref=_text(event["id"], 150),
                status=_text(event.get("status"), 16),
                reason=_text(event.get("reason")),
                reference=_token(rules, event.get("return_path")),
            )
        )
    return _record(session, rules, reports, Received())

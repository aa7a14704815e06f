"""What a message in the bounce mailbox says: a complaint (an ARF report, RFC 5965), a bounce
(a DSN, RFC 3464, or one of the older formats Mailman's flufl.bounce knows), or neither.

DSNs and ARF reports are read here field by field, since their status codes and feedback types
decide hard or soft; everything else goes to flufl.bounce, which has recognised the formats of
Exim, qmail, old Postfix, Exchange, Yahoo and others for Mailman for twenty years. The VERP
token is looked for in the whole text (headers first): the report is addressed to it, and a
mangled DSN still quotes it somewhere.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass, field
from email.message import Message
from email.utils import getaddresses, parseaddr

# Status codes (RFC 3463) in free text: the diagnostic of a non-standard bounce.
_STATUS_RE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_RE = re.compile(r"\b([45]\d\d)[ -]")
_REASON_MAX = 500
# Headers the report is addressed by: where a VERP address is found first.
_ADDRESSED = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to")
# Feedback types that are not complaints (RFC 6650: a report that a message is *not* spam).
_NOT_COMPLAINTS = {"not-spam"}


@dataclass(frozen=True)
class Finding:
    """One address a report is about."""

    email: str
    kind: str  # hard, soft or complaint
    status: str = ""  # 5.1.1 (a complaint: its feedback type)
    reason: str = ""


@dataclass
class Parsed:
    findings: list[Finding] = field(default_factory=list)
    # Where a VERP token may be: the addressed headers, then the whole message.
    addressed: str = ""
    text: str = ""
    ref: str = ""  # the report's Message-ID, else a digest of its bytes

    @property
    def kind(self) -> str:
        """complaint, bounce or none: what kind of message this was."""
        if not self.findings:
            return "none"
        return "complaint" if self.findings[0].kind == "complaint" else "bounce"


def _addr(value: str) -> str:
    """An address from a DSN field (`rfc822; bob@example.com`) or a header."""
    if ";" in value:
        addr_type, _, value = value.partition(";")
        if addr_type.strip().lower() not in ("rfc822", ""):
            return ""
    address = parseaddr(value.strip())[1] or value.strip().strip("<>")
    return address.strip().lower() if "@" in address else ""


def _clip(text: str) -> str:
    return " ".join(text.split())[:_REASON_MAX]


def _blocks(part: Message) -> list[Message]:
    """The field blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    if isinstance(payload, str):  # some parsers leave it as text: split it into blocks
        return [email.message_from_string(b) for b in re.split(r"\r?\n\r?\n", payload) if b]
    return []


def _dsn(msg: Message) -> list[Finding] | None:
    """The recipients of an RFC 3464 report, by their Action and Status; None if not one."""
    parts = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"]
    if not parts:
        return None
    found: list[Finding] = []
    for part in parts:
        for block in _blocks(part):
            action = str(block.get("action", "")).strip().lower()
            recipient = _addr(str(block.get("original-recipient", ""))) or _addr(
                str(block.get("final-recipient", ""))
            )
            if not recipient or not action:
                continue
            status = str(block.get("status", "")).strip().split(" ")[0]
            diagnostic = str(block.get("diagnostic-code", ""))
            if diagnostic:
                diagnostic = diagnostic.partition(";")[2] or diagnostic
            if action.startswith("delayed"):
                kind = "soft"
            elif action.startswith(("fail", "error")):
                kind = "soft" if status.startswith("4") else "hard"
            else:
                continue  # delivered, relayed, expanded: good news
            found.append(Finding(recipient, kind, status, _clip(diagnostic or action)))
    return found


def _arf(msg: Message) -> list[Finding] | None:
    """The complained-about recipient of an RFC 5965 report; None if not one."""
    parts = [p for p in msg.walk() if p.get_content_type() == "message/feedback-report"]
    if not parts:
        return None
    fields: Message = _blocks(parts[0])[0] if _blocks(parts[0]) else Message()
    feedback = str(fields.get("feedback-type", "abuse")).strip().lower()
    if feedback in _NOT_COMPLAINTS:
        return []
    recipients = [_addr(str(v)) for v in fields.get_all("original-rcpt-to", [])]
    if not any(recipients):
        # Many providers leave the field out (privacy) and keep the original's To header.
        for part in msg.walk():
            kind = part.get_content_type()
            original: Message | None = None
            if kind == "message/rfc822" and isinstance(part.get_payload(), list):
                inner = part.get_payload(0)
                original = inner if isinstance(inner, Message) else None
            elif kind == "text/rfc822-headers":
                data = part.get_payload(decode=True)
                text = data.decode("latin-1") if isinstance(data, bytes) else str(data or "")
                original = email.message_from_string(text)
            if original is not None:
                recipients = [a.lower() for _, a in getaddresses(original.get_all("to", []))]
            if any(recipients):
                break
    reason = f"complaint ({feedback})"
    return [Finding(r, "complaint", feedback, reason) for r in recipients if r and "@" in r]


def _body_text(msg: Message) -> str:
    chunks = []
    for part in msg.walk():
        if part.get_content_maintype() in ("text", "message") and not part.is_multipart():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                chunks.append(payload.decode("utf-8", "replace"))
            elif isinstance(part.get_payload(), str):
                chunks.append(str(part.get_payload()))
    return "\n".join(chunks)


def _diagnostic(text: str, address: str) -> tuple[str, str]:
    """The status code and the reason a free-text bounce gives for one address."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    near = [i for i, line in enumerate(lines) if address in line.lower()] or [0]
    window = lines[near[0] : near[0] + 4]
    joined = " ".join(window)
    status = _STATUS_RE.search(joined) or _STATUS_RE.search(text)
    reason = next((line for line in window if _SMTP_RE.search(line)), " ".join(window[:2]))
    return (status.group(1) if status else ""), _clip(reason)


def _legacy(msg: Message, text: str) -> list[Finding]:
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector choking on a strange message: treat it as no bounce
        return []
    found = []
    for kind, addresses in (("hard", permanent), ("soft", temporary - permanent)):
        for raw in sorted(addresses):
            address = raw.decode("ascii", "replace").strip().lower()
            if "@" not in address:
                continue
            status, reason = _diagnostic(text, address)
            # A status code outranks the detector's guess (qmail calls everything permanent).
            if status.startswith("4"):
                kind = "soft"
            found.append(Finding(address, kind, status, reason))
    return found


def parse_report(raw: bytes) -> Parsed:
    """Read one message of the bounce mailbox (its bytes as received)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    addressed = "\n".join(str(v) for name in _ADDRESSED for v in msg.get_all(name, []))
    text = _body_text(msg)
    message_id = str(msg.get("message-id", "")).strip()
    parsed = Parsed(
        addressed=addressed,
        text=f"{raw[:200_000].decode('utf-8', 'replace')}",
        ref=message_id[:150] or hashlib.sha256(raw).hexdigest(),
    )
    arf = _arf(msg)
    if arf is not None:
        parsed.findings = arf
        return parsed
    dsn = _dsn(msg)
    parsed.findings = dsn if dsn is not None else _legacy(msg, text)
    return parsed

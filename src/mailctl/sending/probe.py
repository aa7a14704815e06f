"""`mailctl smtp test`: connect to one server, say what it offers, log in if configured."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass

from mailctl.config import SmtpServer
from mailctl.sending.transport import SetupError, SmtpTransport, _Malformed, _Refused, _text


@dataclass(frozen=True)
class Probe:
    server: str
    address: str
    name: str  # what the server calls itself in its EHLO answer
    tls: str | None  # "TLSv1.3 (TLS_AES_256_GCM_SHA384)", or None for plain text
    pipelining: bool
    size: int | None
    auth: tuple[str, ...]
    starttls_offered: bool  # on a plain connection (security = "none")
    login: str  # "ok as NAME", "not configured"


class ProbeFailed(Exception):
    """One line saying why the server cannot be used."""


def probe(server: SmtpServer, *, deadline: float) -> Probe:
    transport = SmtpTransport(server, deadline=deadline)
    address = f"{server.host}:{server.port}"
    transport._watchdog.arm(None, deadline)
    try:
        conn = transport._connect()
    except SetupError as exc:
        raise ProbeFailed(f"{server.name} ({address}): {exc}") from None
    except smtplib.SMTPConnectError as exc:
        reply = f"{exc.smtp_code} {_text(exc.smtp_error)}"
        raise ProbeFailed(f"{server.name} ({address}): greeting {reply}") from None
    except (_Malformed, _Refused) as exc:
        raise ProbeFailed(f"{server.name} ({address}): {exc}") from None
    except (smtplib.SMTPException, OSError, ValueError, UnicodeError) as exc:
        raise ProbeFailed(f"{server.name} ({address}): {transport._reason(exc)}") from None
    finally:
        transport._watchdog.disarm()
    try:
        features = conn.esmtp_features
        sock = conn.sock
        tls = None
        if isinstance(sock, ssl.SSLSocket):
            cipher = sock.cipher()
            tls = f"{sock.version()} ({cipher[0]})" if cipher else str(sock.version())
        size = features.get("size", "").strip()
        return Probe(
            server=server.name,
            address=address,
            name=_text((conn.ehlo_resp or b"").split(b"\n")[0]),
            tls=tls,
            pipelining="pipelining" in features,
            size=int(size) if size.isdigit() else None,
            auth=tuple(features.get("auth", "").split()),
            starttls_offered="starttls" in features,
            login=f"ok as {server.username}" if server.username else "not configured",
        )
    finally:
        transport._conn = conn
        transport.close()

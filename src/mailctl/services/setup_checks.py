"""What is wrong with the effective configuration, one finding per line (`mailctl config check`).

Serious findings stop mailctl from working or send broken mail to real people; warnings are
worth a look. Nothing here changes anything: no directory or database file is created, and
the mail server only sees a connection, TLS and a login, never a message.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mailctl.config import Settings
from mailctl.errors import MailctlError

DEFAULT_FROM = "mailctl@localhost"
LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Finding:
    serious: bool
    key: str
    text: str

    @property
    def level(self) -> str:
        return "serious" if self.serious else "warning"

    def as_dict(self) -> dict[str, object]:
        return {"level": self.level} | asdict(self)


def check_settings(settings: Settings, *, connect: bool = True) -> list[Finding]:
    """Every problem found; the SMTP server is tried only when `connect` and mail is real."""
    findings: list[Finding] = []
    smtp_mail = settings.delivery.transport == "smtp"
    findings += _links(settings, smtp_mail)
    findings += _sender(settings, smtp_mail)
    findings += _secrets(settings)
    findings += _directories(settings, smtp_mail)
    findings += _database(settings)
    if smtp_mail:
        findings += _smtp_settings(settings)
        if connect and not any(f.serious and f.key.startswith("smtp.") for f in findings):
            findings += _smtp_server(settings)
    return findings


def _links(settings: Settings, smtp_mail: bool) -> list[Finding]:
    problem = settings.base_url_problem()
    if problem:
        return [Finding(True, "web.base_url", problem)]
    url = settings.web.base_url
    if not url:
        return [
            Finding(
                False,
                "web.base_url",
                f"web.base_url is not set: links in mail point at {settings.base_url()} "
                "(fine while mail only goes to the outbox)",
            )
        ]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [Finding(True, "web.base_url", f"web.base_url {url!r} is not an http(s) URL")]
    found = []
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        found.append(
            Finding(
                False,
                "web.base_url",
                f"web.base_url {url} is not https: logins and links travel readable",
            )
        )
    if parts.scheme == "https" and not settings.web.secure_cookies:
        found.append(
            Finding(
                False,
                "web.secure_cookies",
                "web.secure_cookies is off while the panel is served over https: "
                "the session cookie may also travel over plain http",
            )
        )
    return found


def _sender(settings: Settings, smtp_mail: bool) -> list[Finding]:
    address = settings.delivery.from_address
    if address != DEFAULT_FROM:
        return []
    return [
        Finding(
            smtp_mail,
            "delivery.from_address",
            f"delivery.from_address is the default {DEFAULT_FROM}: mail servers refuse or "
            "junk mail from it; set your own sending address",
        )
    ]


def _secrets(settings: Settings) -> list[Finding]:
    found = []
    try:
        key = settings.web.configured_secret_key()
    except MailctlError as exc:
        return [Finding(True, "web.secret_key_file", str(exc))]
    if not key and settings.database.url.startswith("postgresql"):
        found.append(
            Finding(
                True,
                "web.secret_key",
                "web.secret_key is not set while the database is PostgreSQL: each host makes "
                "its own key, so links sent by one host are refused by the panel on another; "
                "give every host the same web.secret_key_file",
            )
        )
    if settings.delivery.transport == "smtp":
        for server in settings.smtp.servers:
            try:
                server.login_password()
            except MailctlError as exc:
                found.append(Finding(True, f"{server.name}.password_file", str(exc)))
    return found


def _writable(path: Path) -> str | None:
    """Why mailctl could not write at `path` (made if missing), or None."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return "no existing parent directory"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable by this user" + (
            "" if probe == path else f" (so {path} cannot be made)"
        )
    return None


def _directories(settings: Settings, smtp_mail: bool) -> list[Finding]:
    places = [
        ("general.data_dir", settings.data_dir),
        ("cache.dir", Path(settings.cache.dir)),
    ]
    if not smtp_mail:
        places.append(("delivery.outbox_dir", Path(settings.delivery.outbox_dir)))
    found = []
    for key, path in places:
        reason = _writable(path)
        if reason:
            found.append(Finding(True, key, f"{key} {path}: {reason}"))
    return found


def _database(settings: Settings) -> list[Finding]:
    from sqlalchemy.engine import make_url

    from mailctl.db import make_engine
    from mailctl.migrations import HEAD, current_revision

    try:
        url = make_url(settings.database.url)
    except Exception:
        return [Finding(True, "database.url", "database.url is not a valid database URL")]
    sqlite_file = url.get_backend_name() == "sqlite" and url.database not in (None, ":memory:")
    if sqlite_file and not Path(str(url.database)).expanduser().exists():
        return [
            Finding(
                True,
                "database.url",
                f"the database {url.database} does not exist yet: run `mailctl init`",
            )
        ]
    try:
        engine = make_engine(settings)  # never creates a database file
    except MailctlError as exc:
        return [Finding(True, "database.url", str(exc))]
    try:
        revision = current_revision(engine)
    except MailctlError as exc:
        return [Finding(True, "database.url", str(exc))]
    except Exception as exc:  # a driver error on connect: the server is down, a bad password
        first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return [Finding(True, "database.url", f"cannot open the database: {first}")]
    finally:
        engine.dispose()
    if revision is None:
        return [Finding(True, "database.url", "the database is empty: run `mailctl init`")]
    if revision != HEAD:
        return [
            Finding(
                True,
                "database.url",
                f"the database is at revision {revision}, this mailctl needs {HEAD}: "
                "run `mailctl db upgrade`",
            )
        ]
    return []


def _smtp_settings(settings: Settings) -> list[Finding]:
    found = []
    for server in settings.smtp.servers:  # `[smtp]`, or each of `[[smtp.servers]]`
        name, host, port, security = server.name, server.host, server.port, server.security
        if security == "none" and server.username and host not in LOOPBACK:
            found.append(
                Finding(
                    False,
                    f"{name}.security",
                    f"{name}.security is none with a login: the password crosses the network "
                    f"to {host} readable; use starttls (port 587) or ssl (port 465)",
                )
            )
        expected = {465: "ssl", 587: "starttls"}.get(port)
        if expected and security != expected:
            found.append(
                Finding(
                    False,
                    f"{name}.security",
                    f"{name}.port {port} usually means {name}.security = {expected}, "
                    f"not {security}",
                )
            )
    return found


def _smtp_server(settings: Settings) -> list[Finding]:
    from mailctl.sending.transport import SetupError, SmtpTransport, Unreachable

    found = []
    for server in settings.smtp.servers:
        transport = SmtpTransport(server, deadline=settings.delivery.attempt_deadline_seconds)
        where = f"{transport.host}:{transport.port}"
        try:
            transport.probe()
        except SetupError as exc:
            found.append(Finding(True, server.name, f"{server.name} {where}: {exc}"))
        except Unreachable as exc:
            found.append(
                Finding(True, f"{server.name}.host", f"{server.name} {where}: not usable: {exc}")
            )
        finally:
            transport.close()
    return found

"""`bounces fetch`: read the bounce mailbox of `[bounces]` over IMAP or POP3, always over TLS
(implicit, or STARTTLS/STLS), record what each message reports, then move or delete it.

A message leaves the mailbox only after what it reported is committed: a crash in between
leaves it there, and the next fetch finds it again and counts nothing twice (bounces.ref).
imaplib and poplib are the standard library's clients; every socket step has the timeout.
"""

from __future__ import annotations

import imaplib
import poplib
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy.engine import Engine

from mailctl.config import BouncesSettings, Settings
from mailctl.db import session_scope, utcnow
from mailctl.errors import ConfigError, MailctlError
from mailctl.models import BounceMailbox
from mailctl.services.bounce_sources import MAX_REPORT_BYTES
from mailctl.services.bounces import Rules, Tally, import_messages


class MailboxError(MailctlError):
    """The bounce mailbox cannot be read: down, refused our login, or a TLS failure."""


def mailbox_name(box: BouncesSettings) -> str:
    folder = f"/{box.folder}" if box.protocol == "imap" else ""
    return f"{box.protocol}://{box.username}@{box.host}:{box.mailbox_port}{folder}"


def configured(settings: Settings) -> bool:
    return bool(settings.bounces.host)


def _context(box: BouncesSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if box.ca_file:
        try:
            context.load_verify_locations(cafile=box.ca_file)
        except ssl.SSLError:
            raise ConfigError(f"bounces.ca_file {box.ca_file} holds no PEM certificate") from None
        except OSError as exc:
            raise ConfigError(
                f"cannot read bounces.ca_file {box.ca_file}: {exc.strerror}"
            ) from None
    return context


def _check(box: BouncesSettings) -> None:
    if not box.host:
        raise ConfigError("no bounce mailbox: set bounces.host (and username, password)")
    if not box.username:
        raise ConfigError("bounces.username is not set")
    if box.protocol == "pop3" and box.after == "move":
        raise ConfigError(
            "bounces.after = move needs IMAP folders; with POP3 set bounces.after = delete"
        )


def _quote(folder: str) -> str:
    # IMAP astrings: a folder with spaces or quotes must be a quoted string.
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _reply_text(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else exc
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(str(text).split())[:300] or type(exc).__name__


class _Imap:
    def __init__(self, box: BouncesSettings, context: ssl.SSLContext) -> None:
        self.box = box
        port = box.mailbox_port
        if box.security == "ssl":
            self.conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                box.host, port, ssl_context=context, timeout=box.timeout
            )
        else:
            self.conn = imaplib.IMAP4(box.host, port, timeout=box.timeout)
        self.uids: list[str] = []
        self._deleted = False
        try:
            self._start(context)
        except BaseException:
            self.conn.shutdown()  # no socket left open behind a refused login
            raise

    def _start(self, context: ssl.SSLContext) -> None:
        box = self.box
        if box.security == "starttls":
            self.conn.starttls(ssl_context=context)
        try:
            self.conn.login(box.username, box.login_password())
        except imaplib.IMAP4.error as exc:
            raise MailboxError(f"login refused: {_reply_text(exc)}") from None
        status, data = self.conn.select(_quote(box.folder))
        if status != "OK":
            raise MailboxError(f"no folder {box.folder!r}: {_reply_text(Exception(*data))}")
        if box.after == "move":
            self.conn.create(_quote(box.move_to))  # NO when it exists already: fine

    def messages(self, limit: int) -> Iterator[bytes | None]:
        status, data = self.conn.uid("SEARCH", "ALL")
        found = data[0].split() if status == "OK" and data and data[0] else []
        self.uids = [uid.decode() for uid in found[:limit]]
        for uid in self.uids:
            status, parts = self.conn.uid("FETCH", uid, "(RFC822.SIZE)")
            size = re.search(
                rb"RFC822\.SIZE (\d+)", parts[0] if isinstance(parts[0], bytes) else b""
            )
            if size is not None and int(size.group(1)) > MAX_REPORT_BYTES:
                yield None  # not a bounce, and not read
                continue
            status, parts = self.conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((p[1] for p in parts if isinstance(p, tuple) and len(p) > 1), None)
            yield raw if isinstance(raw, bytes) else b""

    def done(self, index: int) -> None:
        uid = self.uids[index]
        if self.box.after == "move":
            if "MOVE" in self.conn.capabilities:
                status, data = self.conn.uid("MOVE", uid, _quote(self.box.move_to))
                if status == "OK":
                    return
            status, data = self.conn.uid("COPY", uid, _quote(self.box.move_to))
            if status != "OK":
                why = _reply_text(Exception(*data))
                raise MailboxError(f"cannot move a message to {self.box.move_to!r}: {why}")
        self.conn.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")
        self._deleted = True

    def close(self) -> None:
        try:
            if self._deleted:
                self.conn.expunge()
            self.conn.logout()
        except (OSError, imaplib.IMAP4.error):
            self.conn.shutdown()


class _Pop3:
    def __init__(self, box: BouncesSettings, context: ssl.SSLContext) -> None:
        port = box.mailbox_port
        if box.security == "ssl":
            self.conn: poplib.POP3 = poplib.POP3_SSL(
                box.host, port, context=context, timeout=box.timeout
            )
        else:
            self.conn = poplib.POP3(box.host, port, timeout=box.timeout)
        self.numbers: list[int] = []
        try:
            if box.security == "starttls":
                self.conn.stls(context=context)
            self.conn.user(box.username)
            self.conn.pass_(box.login_password())
        except poplib.error_proto as exc:
            self.conn.close()
            raise MailboxError(f"login refused: {_reply_text(exc)}") from None
        except BaseException:
            self.conn.close()
            raise

    def messages(self, limit: int) -> Iterator[bytes | None]:
        _, listing, _ = self.conn.list()
        sizes = [tuple(int(n) for n in line.split()[:2]) for line in listing][:limit]
        self.numbers = [number for number, _ in sizes]
        for number, size in sizes:
            if size > MAX_REPORT_BYTES:
                yield None  # not a bounce, and not read
                continue
            _, lines, _ = self.conn.retr(number)
            yield b"\r\n".join(lines) + b"\r\n"

    def done(self, index: int) -> None:
        self.conn.dele(self.numbers[index])  # takes effect at QUIT

    def close(self) -> None:
        try:
            self.conn.quit()
        except (OSError, poplib.error_proto):
            pass


@contextmanager
def _opened(box: BouncesSettings) -> Iterator[_Imap | _Pop3]:
    context = _context(box)
    where = f"{box.host}:{box.mailbox_port}"
    try:
        client = _Imap(box, context) if box.protocol == "imap" else _Pop3(box, context)
    except ssl.SSLCertVerificationError as exc:
        raise MailboxError(
            f"TLS: the certificate of {where} was refused ({exc.verify_message});"
            " trust it with bounces.ca_file"
        ) from None
    except TimeoutError:
        raise MailboxError(f"{where} did not answer within {box.timeout:g}s") from None
    except ssl.SSLError as exc:
        raise MailboxError(f"TLS with {where} failed: {exc.reason or exc}") from None
    except ConnectionRefusedError:
        raise MailboxError(f"cannot connect to {where}: connection refused") from None
    except OSError as exc:
        raise MailboxError(f"cannot connect to {where}: {exc.strerror or exc}") from None
    except (imaplib.IMAP4.error, poplib.error_proto) as exc:
        raise MailboxError(f"{where} refused the session: {_reply_text(exc)}") from None
    try:
        yield client
    finally:
        client.close()


def fetch_bounces(*, engine: Engine, settings: Settings) -> Tally:
    """Read up to bounces.max_messages messages, record them, move or delete each one; the
    mailbox's state (last fetch, last error) is kept for `mailctl status`."""
    box = settings.bounces
    _check(box)
    name = mailbox_name(box)
    started = utcnow()
    rules = Rules.from_settings(settings)
    try:
        with _opened(box) as client:
            try:
                tally = import_messages(
                    engine=engine,
                    rules=rules,
                    messages=client.messages(box.max_messages),
                    committed=client.done,
                )
            except (OSError, imaplib.IMAP4.error, poplib.error_proto) as exc:
                raise MailboxError(f"the mailbox stopped answering: {_reply_text(exc)}") from None
    except MailboxError as exc:
        message = f"bounce mailbox {name}: {exc}"
        _note(engine, name, started, error=message)
        raise MailboxError(message) from None
    _note(engine, name, started, summary=tally.line(), processed=tally.processed)
    return tally


def _note(
    engine: Engine,
    name: str,
    at: datetime,
    *,
    error: str | None = None,
    summary: str = "",
    processed: int = 0,
) -> None:
    with session_scope(engine) as session:
        state = session.get(BounceMailbox, name) or BounceMailbox(name=name)
        state.last_fetch_at = at
        state.last_error = error[:1000] if error else None
        if error is None:
            state.last_ok_at = at
            state.last_summary = summary[:300]
            state.processed_total += processed
        session.add(state)


def mailbox_state(engine: Engine, settings: Settings) -> BounceMailbox | None:
    """The configured mailbox as the last fetch left it (None: never fetched)."""
    if not configured(settings):
        return None
    with session_scope(engine, readonly=True) as session:
        state = session.get(BounceMailbox, mailbox_name(settings.bounces))
        if state is not None:
            session.expunge(state)
        return state

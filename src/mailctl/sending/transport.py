"""Transports: an outbox folder, or SMTP that survives every kind of bad mail server.

Every outcome is sorted here, once, into what the ledger needs (RFC 5321 section 4.2.1):
2xx sent; 4xx, dropped or refused connections, timeouts and malformed replies deferred (try
again later); 5xx failed for good; no answer after the final dot unknown (the server may
have taken it, so it is never resent by itself). A connection *reset* after the final dot is
deferred: the server discarded bytes it never read, so it never saw the end of the message.
"""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mailctl.config import Settings, SmtpServer
from mailctl.models.delivery import DEFERRED, FAILED, SENT, UNKNOWN
from mailctl.sending import tls
from mailctl.sending.outbox import outbox_label
from mailctl.sending.watchdog import Watchdog

__all__ = ["DEFERRED", "FAILED", "SENT", "UNKNOWN"]  # what an Outcome's status can be


@dataclass(frozen=True)
class Outcome:
    status: str
    code: int | None
    reply: str
    # The server could not be reached or spoke nonsense: counts toward the circuit breaker.
    connection_failure: bool = False
    # The server asked us to slow down (421, 451 4.7.x, 454 4.7.0, "rate exceeded").
    throttled: bool = False
    # Nothing of this message reached the server (no connection): another may take it.
    untried: bool = False
    # The server that answered ([[smtp.servers]] name); None for the outbox.
    server: str | None = None


def refuse_oversized(data: bytes, max_bytes: int | None) -> Outcome | None:
    """The last gate before the wire: a message over render.max_message_bytes never starts."""
    if max_bytes is not None and len(data) > max_bytes:
        return Outcome(
            FAILED,
            None,
            f"refused before sending: the message is {len(data):,} bytes, more than"
            f" {max_bytes:,} (render.max_message_bytes)",
        )
    return None


class SetupError(Exception):
    """A fault of the set-up, not of a recipient: nothing can go out until the operator fixes
    it, so the pass pauses with this reason instead of deferring everybody."""


class AuthRejected(SetupError):
    """The server refused our login."""


class TlsRejected(SetupError):
    """The server's certificate is not trusted, or it offers no STARTTLS when it must."""


class NotSent(Exception):
    """Nothing was sent and no attempt counts (a quota reached, a stop while pacing, no server
    left): the row goes back as it was. `halt`, when given, stops the pass with that note."""

    def __init__(
        self,
        reason: str,
        *,
        halt: str | None = None,
        fallback: bool = False,
        quota: tuple[str, float] | None = None,
    ) -> None:
        super().__init__(reason)
        self.halt = halt
        # (server, epoch seconds its window opens): the pass waits for a quota, not an error.
        self.quota = quota
        # The pass stops, and `halt` is its note only if no other reason was given.
        self.fallback = fallback


# Replies that mean "too fast" rather than "not now" (RFC 3463 4.7.x is a policy status; SES
# answers 454 "Throttling failure: Maximum sending rate exceeded").
_SLOW_DOWN = re.compile(
    r"throttl|rate (limit )?exceeded|too (many (connections|messages|requests)|fast)|slow down",
    re.I,
)
_POLICY = re.compile(r"^4\.7\.\d")


def slow_down(code: int, text: str) -> bool:
    if code == 421:
        return True
    if code in (451, 454) and _POLICY.match(text):
        return True
    return 400 <= code < 500 and bool(_SLOW_DOWN.search(text))


class Transport(Protocol):
    """Sends one message and sorts the result into an Outcome.

    `meanwhile`, when given, runs once while the transport waits on the server for this
    message's verdict (the sender renders its next message there); it must not raise, and its
    time counts against this attempt's deadline (a render takes microseconds).
    """

    def send(
        self,
        *,
        sender: str,
        recipient: str,
        data: bytes,
        meanwhile: Callable[[], None] | None = None,
    ) -> Outcome: ...

    def close(self) -> None: ...


class OutboxTransport:
    """Each message becomes an .eml file; nothing leaves the machine."""

    def __init__(self, directory: str | Path, *, max_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._seq = 0
        # A folder that cannot be made (a read-only disk) is not an error here: each attempt
        # then fails like a failed write, deferred and counted by the breaker.
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._made = True
        except OSError:
            self._made = False

    def send(
        self,
        *,
        sender: str,
        recipient: str,
        data: bytes,
        meanwhile: Callable[[], None] | None = None,
    ) -> Outcome:
        refused = refuse_oversized(data, self.max_bytes)
        if refused is not None:
            return refused
        self._seq += 1
        name = f"{time.time_ns()}-{os.getpid()}-{self._seq}-{outbox_label(recipient)}.eml"
        tmp = self.directory / f".{name}.tmp"
        try:
            if not self._made:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._made = True
            envelope = f"X-Envelope-From: <{sender}>\r\nX-Envelope-To: <{recipient}>\r\n".encode()
            tmp.write_bytes(envelope + data)
            tmp.rename(self.directory / name)  # atomic: readers never see half a message
        except OSError as exc:
            # A write cut short (a full disk) leaves no half message behind.
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            reason = f"outbox write failed: {exc.strerror} ({self.directory})"
            return Outcome(DEFERRED, None, reason, True)
        if meanwhile is not None:  # a file has no one to wait for: run it now
            meanwhile()
        return Outcome(SENT, 250, f"written to outbox as {name}")

    def close(self) -> None:
        pass


class _Watched:
    """A watched socket, and the server name TLS checks the certificate against.

    smtplib only learns that name from a host given to its constructor, which would also
    connect at once, before the watchdog is attached; `connect()` later does not set it, and
    TLS then fails with "check_hostname requires server_hostname". So it is set here.
    """

    watchdog: Watchdog | None = None
    _host: str

    def watch(self, watchdog: Watchdog, server_name: str) -> None:
        self.watchdog = watchdog
        self._host = server_name

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # smtplib's socket factory is private, so typeshed leaves it out.
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        # The final dot goes out on its own once its rate-limit slot comes: Nagle's algorithm
        # would hold it until the body's ACK (a delayed ACK: up to 40 ms), and a burst.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.watchdog is not None:
            self.watchdog.rearm(sock)
        return sock


class _WatchedSMTP(_Watched, smtplib.SMTP):
    pass


class _WatchedSMTPSSL(_Watched, smtplib.SMTP_SSL):
    pass


# A line of the message that starts with a dot gets a second one (what smtplib's own, private
# _quote_periods does).
_LINE_START_DOT = re.compile(rb"(?m)^\.")


def _was_reset(exc: BaseException) -> bool:
    """smtplib wraps socket errors in SMTPServerDisconnected; look at what it wrapped."""
    seen: BaseException | None = exc
    for _ in range(3):
        if isinstance(seen, ConnectionResetError):
            return True
        if seen is None:
            break
        seen = seen.__cause__ or seen.__context__
    return False


def _valid_code(code: int) -> bool:
    return 200 <= code <= 599


def _text(reply: bytes | str) -> str:
    """A server's words as one line of at most 500 printable characters. They go to the
    database (PostgreSQL refuses a NUL in text: the attempt could not be logged and the pass
    ended), to terminals (escape sequences) and to reports: any control or format character
    left is shown as an escape."""
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    text = " ".join(reply.split())
    if not text.isprintable():
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return text[:500]


class _GateClosed(Exception):
    """The gate before the final dot raised (a stop while waiting for the slot, the
    database gone): the message is abandoned before its end, so the server never takes it."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


class Unreachable(Exception):
    """The server could not be reached or spoke nonsense (a probe's failure)."""


class _Malformed(Exception):
    def __init__(self, code: int, reply: str) -> None:
        super().__init__(f"malformed reply from server (code {code}): {reply!r}"[:500])


class _Refused(Exception):
    """A temporary refusal while setting up the connection (STARTTLS answered 454...)."""


class SmtpTransport:
    """One connection to one server, reused across a run's recipients, re-opened after any
    trouble. `deadline` bounds one message, whatever the server does."""

    def __init__(
        self, server: SmtpServer, *, deadline: float, max_bytes: int | None = None
    ) -> None:
        self.host = server.host
        self.port = server.port
        self.security = server.security
        self.username = server.username
        self.password = server.login_password()
        self.ca_file = server.ca_file
        self.timeout = server.timeout
        self.local_hostname = server.local_hostname
        self.deadline = deadline
        self.max_bytes = max_bytes
        self._conn: smtplib.SMTP | None = None
        self._dirty = False  # a transaction was started and not finished: RSET first
        self._step = "connect"  # what the attempt in progress is waiting for
        self._watchdog = Watchdog()

    # -- connection ---------------------------------------------------------------------

    def tls_context(self) -> ssl.SSLContext:
        try:
            return tls.client_context(self.ca_file)
        except tls.CaFileError as exc:
            raise TlsRejected(str(exc)) from None

    def _connect(self) -> smtplib.SMTP:
        context = self.tls_context() if self.security != "none" else None
        conn: _WatchedSMTP | _WatchedSMTPSSL
        if self.security == "ssl":
            conn = _WatchedSMTPSSL(
                local_hostname=self.local_hostname, timeout=self.timeout, context=context
            )
        else:
            conn = _WatchedSMTP(local_hostname=self.local_hostname, timeout=self.timeout)
        conn.watch(self._watchdog, self.host)
        try:
            code, reply = conn.connect(self.host, self.port)
            if code != 220:
                raise smtplib.SMTPConnectError(code, reply)
            code, reply = conn.ehlo()
            if code == -1 or not _valid_code(code):
                raise _Malformed(code, _text(reply))
            if code != 250:
                code, reply = conn.helo()
                if code != 250:
                    raise smtplib.SMTPHeloError(code, reply)
            if self.security == "starttls":
                if not conn.has_extn("starttls"):
                    # Never fall back to plain text: the login and the mail would travel
                    # readable by anyone on the way (and a man in the middle strips it).
                    raise TlsRejected(
                        "TLS: the mail server does not offer STARTTLS (smtp.security is "
                        "starttls); nothing was sent"
                    )
                try:
                    conn.starttls(context=context)
                except smtplib.SMTPResponseException as exc:  # 454: TLS not available now
                    answer = f"{exc.smtp_code} {_text(exc.smtp_error)}"
                    raise _Refused(f"STARTTLS: {answer}") from None
                self._watchdog.rearm(conn.sock)
                conn.ehlo()
            if self.username:
                self._login(conn)
        except ssl.SSLCertVerificationError as exc:
            self._drop(conn)
            raise TlsRejected(tls.certificate_problem(exc, self.host)) from None
        except BaseException:
            self._drop(conn)
            raise
        return conn

    def _login(self, conn: smtplib.SMTP) -> None:
        if not conn.has_extn("auth"):
            hint = (
                " (many servers offer it only after STARTTLS: set smtp.security)"
                if self.security == "none"
                else ""
            )
            raise AuthRejected(
                f"the mail server offers no login (AUTH) but smtp.username is set{hint}"
            )
        try:
            conn.login(self.username, self.password)
        except smtplib.SMTPAuthenticationError as exc:
            answer = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            raise AuthRejected(f"the mail server rejected the login: {answer}") from None
        except smtplib.SMTPException as exc:
            if "authentication method" not in str(exc):
                raise
            offered = conn.esmtp_features.get("auth", "").strip()
            raise AuthRejected(
                f"the mail server offers no login method mailctl knows ({offered}); "
                "CRAM-MD5, PLAIN and LOGIN are"
            ) from None

    def probe(self) -> str:
        """Connect (TLS and login as configured) and hang up, sending no mail: what
        `mailctl config check` asks. Raises SetupError for a fault of the set-up and
        Unreachable for anything else."""
        try:
            self._watchdog.arm(None, self.deadline)
            conn = self._connect()
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
        except SetupError:
            raise
        except smtplib.SMTPConnectError as exc:
            raise Unreachable(f"greeting: {exc.smtp_code} {_text(exc.smtp_error)}") from None
        except (_Malformed, _Refused) as exc:
            raise Unreachable(str(exc)) from None
        except (smtplib.SMTPException, OSError, ValueError, UnicodeError) as exc:
            raise Unreachable(self._reason(exc)) from None
        finally:
            self._watchdog.disarm()
        secure = {"ssl": ", TLS", "starttls": ", STARTTLS"}.get(self.security, "")
        login = f", logged in as {self.username}" if self.username else ""
        return f"{self.host}:{self.port} answers{secure}{login}"

    def _drop(self, conn: smtplib.SMTP | None = None) -> None:
        conn = conn or self._conn
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass
        if conn is self._conn:
            self._conn = None
        self._dirty = False

    def close(self) -> None:
        if self._conn is not None:
            # Everything was already accepted; whatever QUIT answers changes nothing.
            try:
                self._watchdog.arm(self._conn.sock, min(self.timeout, 5.0))
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
            finally:
                self._watchdog.disarm()
                self._drop()
        self._watchdog.close()

    # -- one message ----------------------------------------------------------------------

    def send(
        self,
        *,
        sender: str,
        recipient: str,
        data: bytes,
        meanwhile: Callable[[], None] | None = None,
        gate: Callable[[], None] | None = None,
    ) -> Outcome:
        """`gate`, when given, runs after the message's body and before its final dot (the
        rate limit's slot is the moment the dot leaves); what it raises abandons the message
        before its end and is raised again."""
        refused = refuse_oversized(data, self.max_bytes)
        if refused is not None:
            return refused
        if not data.endswith(b"\r\n"):
            data += b"\r\n"  # the final dot must start a line of its own
        self._watchdog.arm(self._conn.sock if self._conn else None, self.deadline)
        self._step = "connect"  # _begin says how far it got
        try:
            mail, rcpt, data_reply = self._begin(sender, recipient)
            conn = self._conn
            assert conn is not None
            self._step = "mail"
            failed: tuple[tuple[int, bytes], str] | None = None
            if mail[0] != 250:
                if mail[0] == 530:  # "authentication required": setup, not the recipient's fault
                    raise AuthRejected(f"the mail server requires a login: 530 {_text(mail[1])}")
                failed = (mail, "MAIL FROM")
            elif rcpt is None or rcpt[0] not in (250, 251):
                self._step = "rcpt"
                failed = (rcpt or (-1, b"no reply"), "RCPT TO")
            elif data_reply is None or data_reply[0] != 354:
                self._step = "data"
                failed = (data_reply or (-1, b"no reply"), "DATA")
            if failed is not None:
                if data_reply is not None and data_reply[0] == 354:
                    # A pipelined DATA accepted after a refusal: never feed it a message.
                    self._drop()
                (code, reply), step = failed
                return self._refused(code, reply, step)
            self._step = "data"
            if data.startswith(b".") or b"\n." in data:  # dot-stuffing (RFC 5321 4.5.2)
                data = _LINE_START_DOT.sub(b"..", data)
            if gate is None:
                conn.send(data + b".\r\n")
            else:
                conn.send(data)
                try:
                    gate()
                except BaseException as exc:
                    raise _GateClosed(exc) from exc
                conn.send(b".\r\n")  # first: the slot is now, not after the re-arm
                # The deadline is for the server's part; the wait for the slot is ours.
                self._watchdog.arm(conn.sock, self.deadline)
            self._step = "final"  # from here on the server may have the message
            if meanwhile is not None:
                meanwhile()  # the server is busy with the message: use the wait
            code, reply = conn.getreply()
            self._dirty = False
            if code == 250:
                return Outcome(SENT, code, _text(reply))
            if not _valid_code(code):
                self._drop()
                return Outcome(
                    UNKNOWN, None, f"malformed reply after the message: {_text(reply)!r}"
                )
            return self._refused(code, reply, "end of DATA")
        except _GateClosed as exc:
            self._drop()  # the server discards a message whose end never came
            raise exc.original from None
        except SetupError:
            self._drop()
            raise
        except _Refused as exc:  # only while connecting: nothing of the message was sent
            self._drop()
            return self._temporary(None, str(exc), untried=True)
        except smtplib.SMTPConnectError as exc:
            self._drop()
            return self._temporary(
                exc.smtp_code, f"greeting: {exc.smtp_code} {_text(exc.smtp_error)}", untried=True
            )
        except _Malformed as exc:
            self._drop()
            return self._temporary(None, str(exc), untried=self._step == "connect")
        except smtplib.SMTPResponseException as exc:
            self._drop()
            # smtplib makes up "500 Line too long" for an overlong reply: nonsense, not a refusal.
            reason = f"{self._step}: {exc.smtp_code} {_text(exc.smtp_error)}"
            if self._step == "final":
                return Outcome(UNKNOWN, None, f"no valid reply after the message: {reason}")
            return self._temporary(None, f"malformed reply at {reason}")
        except (smtplib.SMTPException, OSError, ValueError, UnicodeError) as exc:
            self._drop()
            reason = self._reason(exc)
            if self._step == "final" and _was_reset(exc) and not self._watchdog.fired:
                # A reset, not a close: the server threw away bytes it had not read, so it
                # never saw the final dot. (A server that read everything and then died
                # closes with a FIN instead, and that stays unknown.)
                return self._temporary(
                    None, "data: the server reset the connection before the end of the message"
                )
            if self._step == "final":
                return Outcome(UNKNOWN, None, f"no reply after the message was sent: {reason}")
            return self._temporary(None, f"{self._step}: {reason}", untried=self._step == "connect")
        except Exception as exc:  # a bug or a library surprise must not end the run
            self._drop()
            reason = f"unexpected {type(exc).__name__}: {_text(str(exc))}"
            if self._step == "final":
                return Outcome(UNKNOWN, None, f"no reply after the message was sent: {reason}")
            return self._temporary(None, f"{self._step}: {reason}")
        finally:
            self._watchdog.disarm()
            if self._watchdog.fired:
                # The watchdog cut this socket, maybe just after a reply: never reuse it.
                self._drop()

    def _begin(
        self, sender: str, recipient: str
    ) -> tuple[tuple[int, bytes], tuple[int, bytes] | None, tuple[int, bytes] | None]:
        """The envelope on a ready connection; a reused one that has gone stale is replaced
        once (nothing of this message reached a server that had already hung up)."""
        if self._conn is not None:
            try:
                if self._dirty:
                    code, _ = self._conn.rset()
                    if code != 250:
                        raise smtplib.SMTPServerDisconnected("RSET refused")
                    self._dirty = False
                self._dirty = True
                return self._envelope(self._conn, sender, recipient)
            except (smtplib.SMTPServerDisconnected, OSError):
                if self._watchdog.fired:
                    raise
                self._drop()
        self._step = "connect"
        self._conn = self._connect()
        self._dirty = True
        return self._envelope(self._conn, sender, recipient)

    def _envelope(
        self, conn: smtplib.SMTP, sender: str, recipient: str
    ) -> tuple[tuple[int, bytes], tuple[int, bytes] | None, tuple[int, bytes] | None]:
        """MAIL, RCPT and DATA: in one write when the server offers PIPELINING (RFC 2920),
        else one by one, stopping at the first refusal. Addresses were validated when saved,
        so smtplib's slow address re-parsing is skipped. `_step` names the reply awaited, so
        that a server going silent at RCPT is reported as such, not as a failed connect."""
        commands = (f"MAIL FROM:<{sender}>", f"RCPT TO:<{recipient}>", "DATA")
        if conn.does_esmtp and conn.has_extn("pipelining"):
            self._step = "mail"
            conn.send("".join(f"{c}\r\n" for c in commands))
            # A 421 closes the connection: the replies after it never come.
            mail = conn.getreply()
            if mail[0] == 421:
                return mail, None, None
            self._step = "rcpt"
            rcpt = conn.getreply()
            if rcpt[0] == 421:
                return mail, rcpt, None
            self._step = "data"
            return mail, rcpt, conn.getreply()
        self._step = "mail"
        mail = conn.docmd(commands[0])
        if mail[0] != 250:
            return mail, None, None
        self._step = "rcpt"
        rcpt = conn.docmd(commands[1])
        if rcpt[0] not in (250, 251):
            return mail, rcpt, None
        self._step = "data"
        return mail, rcpt, conn.docmd(commands[2])

    def _reason(self, exc: BaseException) -> str:
        if self._watchdog.fired:
            return f"attempt deadline of {self.deadline:g}s exceeded"
        if isinstance(exc, ConnectionRefusedError):
            return f"connection refused by {self.host}:{self.port}"
        if isinstance(exc, TimeoutError | socket.timeout) or "timed out" in str(exc):
            return f"timed out after {self.timeout:g}s"
        if isinstance(exc, ssl.SSLError):
            return f"TLS failure: {exc.reason or exc}"
        text = str(exc) or type(exc).__name__
        return _text(text)

    def _temporary(self, code: int | None, reason: str, *, untried: bool = False) -> Outcome:
        return Outcome(DEFERRED, code, reason, connection_failure=True, untried=untried)

    def _refused(self, code: int, reply: bytes | str, step: str) -> Outcome:
        text = f"{step}: {code} {_text(reply)}"
        if not _valid_code(code):
            self._drop()
            return self._temporary(None, f"malformed reply at {text}")
        if slow_down(code, _text(reply)):
            if code == 421:  # and it closes the connection
                self._drop()
            return Outcome(DEFERRED, code, f"throttled (slow down): {text}", throttled=True)
        if code == 421:  # the server is closing the connection
            self._drop()
            return self._temporary(code, text)
        if 400 <= code < 500:
            return Outcome(DEFERRED, code, text)
        return Outcome(FAILED, code, text)


def smtp_transport(settings: Settings) -> SmtpTransport:
    """The first configured server (`[smtp]`, or the first of `[[smtp.servers]]`)."""
    # Mailings, account notices and test sends go through sending/pool.py, which spreads
    # them over every server with failover.
    return SmtpTransport(
        settings.smtp.servers[0],
        deadline=settings.delivery.attempt_deadline_seconds,
        max_bytes=settings.render.max_message_bytes,
    )


def make_transport(settings: Settings) -> Transport:
    if settings.delivery.transport == "smtp":
        return smtp_transport(settings)
    return OutboxTransport(
        settings.delivery.outbox_dir, max_bytes=settings.render.max_message_bytes
    )

"""A deliberately misbehaving SMTP server for fault-injection tests.

Pure stdlib (``socket`` + ``threading``): one accept thread plus one thread per
connection, listening on 127.0.0.1 on an ephemeral port.  Every blocking call
uses a short socket timeout (or ``Event.wait``) so :meth:`FaultServer.stop`
unblocks everything promptly.

Usage::

    with FaultServer("451_rcpt") as srv:
        engine.send(host=srv.host, port=srv.port, ...)
        assert srv.messages == []

Scenarios (applied to each *new* connection, see :data:`SCENARIOS`):

``ok``              minimal ESMTP server; ``reject`` addresses get 550 at RCPT;
                    AUTH PLAIN/LOGIN with user ``user`` / password ``pass``.
``slow_greeting``   waits ``delay`` seconds before the 220, then like ``ok``.
``silent``          accepts and never sends a byte.
``slow_drip``       every reply is sent one byte at a time, ``drip_interval``
                    (0.3 s) between bytes; the final DATA reply is
                    ``"250 " + "x" * 200`` (about a minute in total).
``garbage``         fine greeting, every later reply is ``xyz\\x00\\xff not smtp``.
``garbage_mail``    like ``ok`` but MAIL FROM is answered with ``25\\r\\n``.
``421_greeting``    ``421 4.3.2 ...`` as greeting, then close.
``451_rcpt``        every RCPT gets ``451 4.3.0 temporary local problem``.
``452_rcpt``        every RCPT gets ``452 4.5.3 too many recipients``.
``550_some``        same as ``ok`` (``reject`` addresses get 550).
``drop_data``       after the 354, reads a little body then resets the socket.
``no_final_reply``  reads the whole body, then never answers.
``silent_after_dot`` reads the whole body and keeps the message (it counts as received),
                    then never answers: a server that took it and went silent.
``silent_every_other`` like ``silent_after_dot`` for the 1st, 3rd, 5th... message the server
                    receives, and like ``ok`` for the others: a server that answers now and then.
``silent_rcpt``     like ``ok`` but never answers RCPT TO.
``control_reply``   like ``ok`` but the final reply carries a NUL, an escape sequence and a
                    right-to-left override: ``250 2.0.0 queued\\x00 \\x1b[2J\\u202e N``.
``garbage_quit``    like ``ok`` but QUIT is answered with ``\\x00\\xffgarbage``.
``refuse``          listener closed for ``down_for`` seconds (ECONNREFUSED),
                    then re-bound on the same port and behaves like ``ok``.
``535_auth``        advertises AUTH PLAIN LOGIN; every AUTH gets 535.
``line_too_long``   every reply line is 10,000 characters long.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import socket
import struct
import threading
import time

__all__ = ["SCENARIOS", "FaultServer"]

SCENARIOS = frozenset(
    {
        "ok",
        "slow_greeting",
        "silent",
        "slow_drip",
        "garbage",
        "garbage_mail",
        "421_greeting",
        "451_rcpt",
        "452_rcpt",
        "550_some",
        "drop_data",
        "no_final_reply",
        "silent_after_dot",
        "silent_every_other",
        "silent_rcpt",
        "control_reply",
        "garbage_quit",
        "refuse",
        "535_auth",
        "line_too_long",
    }
)

_POLL = 0.1  # socket timeout / poll interval used by every loop
_MAX_LINE = 1 << 20  # a command line longer than this ends the connection
_LONG_LINE = 10_000  # reply line length in "line_too_long" (CRLF not counted)

GREETING = "220 faultserver ESMTP"
GARBAGE_REPLY = b"xyz\x00\xff not smtp\r\n"
AUTH_USER = "user"
AUTH_PASSWORD = "pass"


class _Closed(Exception):
    """The peer went away, or the server is stopping: end the session."""


def _addr(arg: str, keyword: str) -> str | None:
    """Extract the address of ``FROM:<a@b> ...`` / ``TO:<a@b> ...``; None on syntax error."""
    if arg[: len(keyword) + 1].upper() != keyword + ":":
        return None
    rest = arg[len(keyword) + 1 :].strip()
    if rest.startswith("<"):
        end = rest.find(">")
        if end < 0:
            return None
        return rest[1:end]
    return rest.split(" ", 1)[0] if rest else None


class _Session:
    """One client connection (runs in its own thread)."""

    def __init__(self, server: FaultServer, sock: socket.socket, scenario: str) -> None:
        self.server = server
        self.sock = sock
        self.scenario = "ok" if scenario in ("refuse", "550_some") else scenario
        self.buf = b""
        self.closed = False
        self.lock = threading.Lock()  # guards close() vs. server-side shutdown()
        self.reset()

    # -- transaction state ---------------------------------------------------
    def reset(self) -> None:
        self.mail_from: str | None = None
        self.rcpts: list[str] = []

    # -- low level I/O -------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self.server._stop_event.is_set()

    def _recv_more(self) -> None:
        while True:
            if self.stopping:
                raise _Closed
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                raise _Closed from exc
            if not data:
                raise _Closed
            self.buf += data
            return

    def readline(self) -> bytes:
        """Return the next line, CRLF (or LF) stripped."""
        while True:
            idx = self.buf.find(b"\n")
            if idx >= 0:
                line, self.buf = self.buf[:idx], self.buf[idx + 1 :]
                return line[:-1] if line.endswith(b"\r") else line
            if len(self.buf) > _MAX_LINE:
                raise _Closed
            self._recv_more()

    def send_raw(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.stopping:
                raise _Closed
            try:
                sent = self.sock.send(view)
            except TimeoutError:
                continue
            except OSError as exc:
                raise _Closed from exc
            view = view[sent:]

    def drip(self, data: bytes) -> None:
        interval = self.server.drip_interval
        for i in range(len(data)):
            if i and self.server._stop_event.wait(interval):
                raise _Closed
            self.send_raw(data[i : i + 1])

    def reply(self, *lines: str) -> None:
        """Send a (possibly multi-line) reply, transformed by the scenario."""
        if self.scenario == "line_too_long":
            lines = tuple(ln.ljust(_LONG_LINE, "x") for ln in lines)
        data = "".join(ln + "\r\n" for ln in lines).encode("utf-8", "replace")
        if self.scenario == "slow_drip":
            self.drip(data)
        else:
            self.send_raw(data)

    def hang(self) -> None:
        """Say nothing until the client closes or the server stops."""
        while True:
            self._recv_more()
            self.buf = b""

    def close(self, *, abort: bool = False) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            if abort:
                # SO_LINGER 0: close() sends RST instead of FIN.
                with contextlib.suppress(OSError):
                    self.sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
            self.sock.close()

    def kick(self) -> None:
        """Called from another thread by stop(): unblock a stuck session."""
        with self.lock:
            if not self.closed:
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RDWR)

    # -- protocol ------------------------------------------------------------
    def run(self) -> None:
        try:
            self._run()
        except _Closed:
            pass
        finally:
            self.close()

    def _run(self) -> None:
        sc = self.scenario
        if sc == "silent":
            self.hang()
        if sc == "421_greeting":
            self.reply("421 4.3.2 Service not available, try later")
            return
        if sc == "slow_greeting" and self.server._stop_event.wait(self.server.delay):
            return
        self.reply(GREETING)
        while True:
            raw = self.readline()
            line = raw.decode("utf-8", "replace")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            arg = arg.strip()
            if sc == "garbage":
                self.send_raw(GARBAGE_REPLY)
                if verb == "QUIT":
                    return
                continue
            handler = getattr(self, "cmd_" + verb, None) if verb.isalpha() else None
            if handler is None:
                self.reply("500 5.5.2 command not recognized")
                continue
            if handler(arg) is False:
                return

    def cmd_EHLO(self, arg: str) -> None:
        if not arg:
            self.reply("501 5.5.4 EHLO requires a domain")
            return
        self.reset()
        self.reply(
            f"250-127.0.0.1 greets {arg}",
            "250-SIZE 10485760",
            "250-8BITMIME",
            *(["250-PIPELINING"] if self.server.pipelining else []),
            "250-ENHANCEDSTATUSCODES",
            "250 AUTH PLAIN LOGIN",
        )

    def cmd_HELO(self, arg: str) -> None:
        if not arg:
            self.reply("501 5.5.4 HELO requires a domain")
            return
        self.reset()
        self.reply(f"250 127.0.0.1 greets {arg}")

    def cmd_MAIL(self, arg: str) -> None:
        if self.scenario == "garbage_mail":
            self.send_raw(b"25\r\n")
            return
        if self.mail_from is not None:
            self.reply("503 5.5.1 nested MAIL command")
            return
        addr = _addr(arg, "FROM")
        if addr is None:
            self.reply("501 5.5.4 syntax: MAIL FROM:<address>")
            return
        self.mail_from = addr
        self.reply("250 2.1.0 OK")

    def cmd_RCPT(self, arg: str) -> None:
        if self.scenario == "silent_rcpt":
            self.hang()
        if self.scenario == "451_rcpt":
            self.reply("451 4.3.0 temporary local problem")
            return
        if self.scenario == "452_rcpt":
            self.reply("452 4.5.3 too many recipients")
            return
        if self.mail_from is None:
            self.reply("503 5.5.1 need MAIL before RCPT")
            return
        addr = _addr(arg, "TO")
        if addr is None:
            self.reply("501 5.5.4 syntax: RCPT TO:<address>")
            return
        if addr.lower() in self.server._reject_lower:
            self.reply("550 5.1.1 no such user")
            return
        self.rcpts.append(addr)
        self.reply("250 2.1.5 OK")

    def cmd_DATA(self, arg: str) -> bool | None:
        if self.mail_from is None:
            self.reply("503 5.5.1 need MAIL command")
            return None
        if not self.rcpts:
            self.reply("554 5.5.1 no valid recipients")
            return None
        self.reply("354 End data with <CR><LF>.<CR><LF>")
        if self.scenario == "drop_data":
            # Read "a little" of the body (whatever is already buffered, or one
            # small recv of up to 64 bytes), then reset the connection.
            deadline = time.monotonic() + 1.0
            while not self.buf and time.monotonic() < deadline and not self.stopping:
                try:
                    chunk = self.sock.recv(64)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                self.buf += chunk
            self.close(abort=True)
            return False
        body: list[bytes] = []
        while True:
            line = self.readline()
            if line == b".":
                break
            if line.startswith(b"."):
                line = line[1:]
            body.append(line + b"\r\n")
        if self.scenario == "no_final_reply":
            self.hang()
        n = self.server._store(self.mail_from, list(self.rcpts), b"".join(body))
        if self.scenario == "silent_after_dot" or (
            self.scenario == "silent_every_other" and n % 2 == 1
        ):
            self.hang()
        self.reset()
        if self.scenario == "slow_drip":
            self.reply("250 " + "x" * 200)
        elif self.scenario == "control_reply":
            self.reply(f"250 2.0.0 queued\x00 \x1b[2J\u202e {n}")
        else:
            self.reply(f"250 2.0.0 queued as {n}")
        return None

    def cmd_RSET(self, arg: str) -> None:
        self.reset()
        self.reply("250 2.0.0 OK")

    def cmd_NOOP(self, arg: str) -> None:
        self.reply("250 2.0.0 OK")

    def cmd_VRFY(self, arg: str) -> None:
        self.reply("252 2.1.5 cannot VRFY user")

    def cmd_HELP(self, arg: str) -> None:
        self.reply("214 2.0.0 EHLO HELO MAIL RCPT DATA RSET NOOP QUIT AUTH")

    def cmd_STARTTLS(self, arg: str) -> None:
        self.reply("454 4.7.0 TLS not available")

    def cmd_QUIT(self, arg: str) -> bool:
        if self.scenario == "garbage_quit":
            self.send_raw(b"\x00\xffgarbage")
        else:
            self.reply("221 2.0.0 Bye")
        return False

    # -- AUTH ----------------------------------------------------------------
    def _b64(self, text: str) -> str | None:
        if text == "*":
            return None
        try:
            return base64.b64decode(text.encode("ascii"), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeError, ValueError):
            return None

    def _challenge(self, prompt: str) -> str | None:
        self.reply("334 " + base64.b64encode(prompt.encode()).decode())
        return self._b64(self.readline().decode("utf-8", "replace").strip())

    def cmd_AUTH(self, arg: str) -> None:
        if self.scenario == "535_auth":
            self.reply("535 5.7.8 authentication credentials invalid")
            return
        mech, _, initial = arg.partition(" ")
        mech, initial = mech.upper(), initial.strip()
        if mech == "PLAIN":
            if initial:
                decoded = self._b64(initial) if initial != "=" else ""
            else:
                decoded = self._challenge("")
            if decoded is None:
                self.reply("501 5.5.2 cannot decode response")
                return
            parts = decoded.split("\x00")
            if len(parts) != 3:
                self.reply("501 5.5.2 malformed PLAIN response")
                return
            user, password = parts[1], parts[2]
        elif mech == "LOGIN":
            user = self._b64(initial) if initial else self._challenge("Username:")
            if user is None:
                self.reply("501 5.5.2 cannot decode response")
                return
            password = self._challenge("Password:")
            if password is None:
                self.reply("501 5.5.2 cannot decode response")
                return
        else:
            self.reply("504 5.5.4 unrecognized authentication type")
            return
        if user == AUTH_USER and password == AUTH_PASSWORD:
            self.reply("235 2.7.0 Authentication successful")
        else:
            self.reply("535 5.7.8 authentication credentials invalid")


class FaultServer:
    """A misbehaving SMTP server on 127.0.0.1 (see module docstring for scenarios)."""

    drip_interval: float = 0.3  # pause between bytes in "slow_drip" (override per instance)

    def __init__(
        self,
        scenario: str = "ok",
        *,
        reject: set[str] | None = None,
        down_for: float = 0.0,
        delay: float = 5.0,
        pipelining: bool = True,
    ) -> None:
        self._check(scenario)
        self.pipelining = pipelining  # advertise PIPELINING (RFC 2920) in the EHLO reply
        self.host: str = "127.0.0.1"
        self.port: int = 0
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.connections: int = 0
        self.reject: set[str] = set(reject or ())
        self._reject_lower = {a.lower() for a in self.reject}
        self.down_for = down_for
        self.delay = delay
        self._scenario = scenario
        self._lock = threading.Lock()  # messages / connections / sessions
        self._cond = threading.Condition()  # listener state
        self._stop_event = threading.Event()
        self._listener: socket.socket | None = None
        self._down_until = 0.0
        self._accept_thread: threading.Thread | None = None
        self._sessions: dict[threading.Thread, _Session] = {}
        self._started = False

    # -- public API ----------------------------------------------------------
    @property
    def scenario(self) -> str:
        return self._scenario

    def start(self) -> FaultServer:
        if self._started:
            raise RuntimeError("FaultServer already started")
        self._started = True
        self._listener = self._bind(0)
        self.port = self._listener.getsockname()[1]
        if self._scenario == "refuse" and self.down_for > 0:
            self._down_until = time.monotonic() + self.down_for
            self._listener.close()
            self._listener = None
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"faultserver-accept-{self.port}", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        self._stop_event.set()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=1.0)
        with self._cond:  # if the accept thread never ran (or hung), close here
            if self._listener is not None and not (
                self._accept_thread is not None and self._accept_thread.is_alive()
            ):
                self._listener.close()
                self._listener = None
        deadline = time.monotonic() + 0.5
        for thread, session in self._snapshot_sessions():
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                session.kick()
                thread.join(timeout=0.2)

    def set_scenario(self, scenario: str) -> None:
        """Switch behaviour for NEW connections ("refuse" starts a new down period)."""
        self._check(scenario)
        with self._cond:
            self._scenario = scenario
            if scenario == "refuse" and self.down_for > 0:
                self._down_until = time.monotonic() + self.down_for
                running = self._accept_thread is not None and self._accept_thread.is_alive()
                if not running and self._listener is not None:
                    self._listener.close()
                    self._listener = None
                # The accept thread owns the listener: wait until it has closed it,
                # so connections made after we return are refused.
                self._cond.wait_for(
                    lambda: self._listener is None or self._stop_event.is_set(), timeout=2.0
                )
            else:
                was_down = self._down_until > 0.0
                self._down_until = 0.0
                self._cond.notify_all()
                running = self._accept_thread is not None and self._accept_thread.is_alive()
                if was_down and running:
                    # Wait for the accept thread to re-bind, so we return "up".
                    self._cond.wait_for(
                        lambda: self._listener is not None or self._stop_event.is_set(),
                        timeout=2.0,
                    )

    def received_rcpts(self) -> list[str]:
        """Flat list of the recipients of every accepted message, in order."""
        with self._lock:
            return [rcpt for _from, rcpts, _data in self.messages for rcpt in rcpts]

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<FaultServer {self._scenario!r} {self.host}:{self.port}>"

    # -- internals -----------------------------------------------------------
    @staticmethod
    def _check(scenario: str) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; known: {sorted(SCENARIOS)}")

    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, port))
            sock.listen(64)
            sock.settimeout(_POLL)
        except BaseException:
            sock.close()
            raise
        return sock

    def _store(self, mail_from: str, rcpts: list[str], data: bytes) -> int:
        with self._lock:
            self.messages.append((mail_from, rcpts, data))
            return len(self.messages)

    def _snapshot_sessions(self) -> list[tuple[threading.Thread, _Session]]:
        with self._lock:
            return list(self._sessions.items())

    def _manage_listener(self) -> socket.socket | None:
        """Close / re-open the listener according to the refuse window."""
        with self._cond:
            down = time.monotonic() < self._down_until
            if down and self._listener is not None:
                self._listener.close()
                self._listener = None
                self._cond.notify_all()
            elif not down and self._listener is None:
                with contextlib.suppress(OSError):  # retried on the next loop
                    self._listener = self._bind(self.port)
                self._cond.notify_all()
            return self._listener

    def _accept_loop(self) -> None:
        try:
            while not self._stop_event.is_set():
                listener = self._manage_listener()
                if listener is None:
                    with self._cond:
                        remaining = self._down_until - time.monotonic()
                    self._stop_event.wait(min(0.05, max(0.005, remaining)))
                    continue
                try:
                    conn, _peer = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    if self._stop_event.is_set():
                        break
                    continue
                self._spawn(conn)
        finally:
            with self._cond:
                if self._listener is not None:
                    self._listener.close()
                    self._listener = None
                self._cond.notify_all()

    def _spawn(self, conn: socket.socket) -> None:
        conn.settimeout(_POLL)
        with self._cond:
            scenario = self._scenario
        session = _Session(self, conn, scenario)
        thread = threading.Thread(
            target=self._run_session, args=(session,), name="faultserver-conn", daemon=True
        )
        with self._lock:
            self.connections += 1
            self._sessions[thread] = session
        thread.start()

    def _run_session(self, session: _Session) -> None:
        try:
            session.run()
        finally:
            with self._lock:
                self._sessions.pop(threading.current_thread(), None)

"""Sending over TLS: STARTTLS and implicit TLS against real servers, with certificates the
tests make (trusted through smtp.ca_file), logins after TLS, and every broken certificate a
relay can have turned into one line that pauses the pass."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.certs import Authority, ServerCert
from tests.support.ledger import attempts, ledger, mailing_error
from tests.support.smtp import Collector, free_port

USER, PASSWORD = "news@example.org", "relay-secret-Pw9"


@dataclass
class Logins:
    """An aiosmtpd authenticator that accepts USER/PASSWORD and notes how each login came."""

    seen: list[tuple[str, str, bool]] = field(default_factory=list)  # (mechanism, login, tls)

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any):
        from aiosmtpd.smtp import AuthResult

        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        login = data.login.decode() if isinstance(data.login, bytes) else data.login
        password = data.password.decode() if isinstance(data.password, bytes) else data.password
        self.seen.append((mechanism, login, tls))
        return AuthResult(success=login == USER and password == PASSWORD)


@dataclass
class Server:
    port: int
    handler: Collector
    logins: Logins


@dataclass
class Pki:
    authority: Authority
    good: ServerCert
    self_signed: ServerCert
    expired: ServerCert
    wrong_host: ServerCert
    other_ca: Authority


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    directory = tmp_path / "pki"
    directory.mkdir()
    authority = Authority(directory)
    other = Authority(directory, name="some other CA")
    return Pki(
        authority=authority,
        good=authority.issue("good"),
        self_signed=authority.issue("self-signed", self_signed=True),
        expired=authority.issue("expired", valid_days=(-30, -1)),
        wrong_host=authority.issue("wrong-host", hosts=("mail.example.net",)),
        other_ca=other,
    )


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., Server]]:
    """Start an aiosmtpd server: STARTTLS (`tls`) or implicit TLS (`implicit`)."""
    from aiosmtpd.controller import Controller

    controllers: list[Any] = []

    def start(
        cert: ServerCert | None,
        *,
        implicit: bool = False,
        require_starttls: bool = True,
        auth_before_tls: bool = False,
        mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN"),
    ) -> Server:
        handler, logins = Collector(), Logins()
        port = free_port()
        context = cert.server_context() if cert is not None else None
        # aiosmtpd sees implicit TLS as no TLS at all: let it take a login there. (It warns
        # about requiring a login without TLS, so a login is only required with STARTTLS.)
        tls_for_auth = not (implicit or auth_before_tls)
        kwargs: dict[str, Any] = {
            "authenticator": logins,
            "auth_required": tls_for_auth,
            "auth_require_tls": tls_for_auth,
            "auth_exclude_mechanism": [m for m in ("PLAIN", "LOGIN") if m not in mechanisms],
        }
        if implicit:
            kwargs["ssl_context"] = context
        elif context is not None:
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = require_starttls and not auth_before_tls
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        controllers.append(controller)
        return Server(port, handler, logins)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def mailing(cli) -> Callable[[int], int]:
    """A stored mailing (not sent yet) to `n` clients of the admin."""

    def make(n: int = 3) -> int:
        for i in range(n):
            assert cli("client", "add", f"c{i}@example.com", "--name", f"C {i}").exit_code == 0
        message = cli("message", "add", "--subject", "Hi {{ client.first_name }}", "--body", "x")
        result = cli(
            "mailing",
            "add",
            "--message",
            message.stdout.strip(),
            "--all-clients",
            "--start",
            "now",
            "--no-send",
        )
        assert result.exit_code == 0, result.stderr
        return int(result.stdout.strip())

    return make


def _tls_settings(smtp_settings, port: int, security: str, ca_file: Path | None, **extra):
    return smtp_settings(
        port,
        smtp_host="localhost",  # a name the certificate lists, checked by the client
        smtp_security=security,
        smtp_ca_file=str(ca_file) if ca_file else "",
        smtp_username=USER,
        smtp_password=PASSWORD,
        smtp_timeout=5,
        delivery_attempt_deadline_seconds=10,
        **extra,
    )


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_a_mailing_goes_out_over_starttls_with_a_login(
    cli, engine, pki: Pki, smtp_server, smtp_settings, mailing, mechanism: str
) -> None:
    server = smtp_server(pki.good, mechanisms=(mechanism,))
    _tls_settings(smtp_settings, server.port, "starttls", pki.authority.ca_file)
    mailing_id = mailing(3)

    result = cli("mailing", "send", mailing_id)
    assert result.exit_code == 0, result.stderr
    assert "sent 3," in result.stderr
    assert sorted(server.handler.rcpts()) == [f"c{i}@example.com" for i in range(3)]
    # One connection, one login, made over TLS with the mechanism the server offered.
    assert server.logins.seen == [(mechanism, USER, True)]
    assert {r["state"] for r in ledger(engine, mailing_id).values()} == {"sent"}
    assert mailing_error(engine, mailing_id) is None


def test_a_mailing_goes_out_over_implicit_tls(
    cli, engine, pki: Pki, smtp_server, smtp_settings, mailing
) -> None:
    server = smtp_server(pki.good, implicit=True)
    _tls_settings(smtp_settings, server.port, "ssl", pki.authority.ca_file)
    mailing_id = mailing(2)

    result = cli("mailing", "send", mailing_id)
    assert result.exit_code == 0, result.stderr
    assert sorted(server.handler.rcpts()) == ["c0@example.com", "c1@example.com"]
    assert [(m, login, tls) for m, login, tls in server.logins.seen] == [("PLAIN", USER, True)]
    assert {a["status"] for a in attempts(engine, mailing_id)} == {"sent"}


def test_the_ca_file_adds_to_the_system_store(pki: Pki, smtp_settings) -> None:
    """smtp.ca_file trusts one more CA; the public ones stay trusted."""
    from mailctl.sending.transport import smtp_transport

    settings = _tls_settings(smtp_settings, 587, "starttls", pki.authority.ca_file)
    transport = smtp_transport(settings)
    try:
        context = transport.tls_context()
    finally:
        transport.close()
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    subjects = [dict(x[0] for x in c["subject"]) for c in context.get_ca_certs()]
    assert {"commonName": "mailctl test CA"} in subjects
    assert len(subjects) > 1 or not ssl.get_default_verify_paths().cafile


class Wiretap:
    """A TCP relay between mailctl and the server that keeps what the client sent."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sent = bytearray()
        self.threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            for src, dst, keep in ((client, upstream, True), (upstream, client, False)):
                thread = threading.Thread(target=self._pump, args=(src, dst, keep), daemon=True)
                thread.start()
                self.threads.append(thread)

    def _pump(self, src: socket.socket, dst: socket.socket, keep: bool) -> None:
        try:
            while data := src.recv(65536):
                if keep:
                    self.sent += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()
        for thread in self.threads:
            thread.join(timeout=5)


def test_no_password_crosses_the_wire_before_tls(
    cli, engine, pki: Pki, smtp_server, smtp_settings, mailing
) -> None:
    """The server offers AUTH before STARTTLS (as some do); mailctl still waits for TLS."""
    server = smtp_server(pki.good, auth_before_tls=True)
    tap = Wiretap(server.port)
    try:
        _tls_settings(smtp_settings, tap.port, "starttls", pki.authority.ca_file)
        mailing_id = mailing(1)
        result = cli("mailing", "send", mailing_id)
    finally:
        tap.close()
    assert result.exit_code == 0, result.stderr
    assert server.handler.rcpts() == ["c0@example.com"]
    assert server.logins.seen == [("PLAIN", USER, True)]

    wire = bytes(tap.sent)
    plain_part = wire[: wire.upper().index(b"STARTTLS\r\n")].upper()
    assert plain_part == b"EHLO LOCALHOST\r\n"  # and nothing else before TLS is up
    for secret in (
        PASSWORD.encode(),
        base64.b64encode(PASSWORD.encode()),
        base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()),
    ):
        assert secret not in wire  # neither before TLS nor (encrypted) after it


def test_a_server_without_starttls_gets_no_login_and_pauses_the_pass(
    cli, engine, smtp_server, smtp_settings, mailing
) -> None:
    server = smtp_server(None, auth_before_tls=True)  # plain text only, AUTH offered
    _tls_settings(smtp_settings, server.port, "starttls", None)
    mailing_id = mailing(3)

    result = cli("mailing", "send", mailing_id)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "paused: TLS: the mail server does not offer STARTTLS" in lines[0]
    assert server.logins.seen == []
    assert server.handler.rcpts() == []
    assert {r["state"] for r in ledger(engine, mailing_id).values()} == {"pending"}


@pytest.mark.parametrize("security", ["starttls", "ssl"])
@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("self_signed", "certificate is self-signed; trust it with smtp.ca_file"),
        ("wrong_host", "certificate is for another host name, not 'localhost'"),
        ("expired", "certificate has expired"),
        ("unknown_ca", "certificate is signed by an unknown certificate authority"),
        ("other_ca", "certificate is signed by an unknown certificate authority"),
    ],
)
def test_an_untrusted_certificate_pauses_the_pass_with_one_line(
    cli, engine, pki: Pki, smtp_server, smtp_settings, mailing, security, case, reason
) -> None:
    cert = {"self_signed": pki.self_signed, "expired": pki.expired, "wrong_host": pki.wrong_host}
    server = smtp_server(cert.get(case, pki.good), implicit=security == "ssl")
    ca_file = {"unknown_ca": None, "other_ca": pki.other_ca.ca_file}.get(
        case, pki.authority.ca_file
    )
    _tls_settings(smtp_settings, server.port, security, ca_file, delivery_circuit_breaker=2)
    mailing_id = mailing(4)

    result = cli("mailing", "send", mailing_id)
    assert result.exit_code == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"paused: TLS: the mail server's {reason}" in lines[0]
    assert "consecutive connection failures" not in lines[0]
    # A set-up fault: nobody was deferred or charged an attempt, and the mailing says why.
    for row in ledger(engine, mailing_id).values():
        assert (row["state"], row["attempts"]) == ("pending", 0)
    assert attempts(engine, mailing_id) == []
    assert reason in (mailing_error(engine, mailing_id) or "")
    assert server.handler.rcpts() == [] and server.logins.seen == []

    # Fixed by the operator: the next pass sends everybody once.
    if case in ("unknown_ca", "other_ca"):
        _tls_settings(smtp_settings, server.port, security, pki.authority.ca_file)
        again = cli("mailing", "send", mailing_id)
        assert again.exit_code == 0, again.stderr
        assert sorted(server.handler.rcpts()) == [f"c{i}@example.com" for i in range(4)]
        assert mailing_error(engine, mailing_id) is None


def test_an_unreadable_ca_file_pauses_the_pass(
    cli, engine, pki: Pki, smtp_server, smtp_settings, mailing, tmp_path: Path
) -> None:
    server = smtp_server(pki.good)
    missing = tmp_path / "no-such-ca.pem"
    _tls_settings(smtp_settings, server.port, "starttls", missing)
    mailing_id = mailing(1)
    result = cli("mailing", "send", mailing_id)
    assert result.exit_code == 1
    assert f"paused: cannot read smtp.ca_file {missing}: No such file" in result.stderr

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    _tls_settings(smtp_settings, server.port, "starttls", garbage)
    result = cli("mailing", "send", mailing_id)
    assert result.exit_code == 1
    assert f"smtp.ca_file {garbage} holds no PEM certificate" in result.stderr
    assert {r["state"] for r in ledger(engine, mailing_id).values()} == {"pending"}


# -- Postfix: the MTA most relays run --------------------------------------------------------


@pytest.fixture
def postfix(pki: Pki) -> Iterator[Any]:
    from tests.support import postfix as relay

    reason = relay.available()
    if reason:
        pytest.skip(reason)
    server = relay.PostfixRelay.start(pki.good.cert, pki.good.key, USER, PASSWORD)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_mailing_goes_out_through_postfix(
    cli, engine, pki: Pki, postfix, smtp_settings, mailing, security: str
) -> None:
    port = postfix.starttls_port if security == "starttls" else postfix.implicit_port
    _tls_settings(smtp_settings, port, security, pki.authority.ca_file)
    mailing_id = mailing(3)

    result = cli("mailing", "send", mailing_id)
    assert result.exit_code == 0, result.stderr + postfix.log()
    assert "sent 3," in result.stderr
    rows = ledger(engine, mailing_id).values()
    assert {r["state"] for r in rows} == {"sent"}
    assert all("queued as" in r["last_reply"] for r in rows), [r["last_reply"] for r in rows]
    assert len(postfix.held()) == 3
    log = postfix.log()
    assert log.count(f"sasl_method=PLAIN, sasl_username={USER}") == 3
    assert "TLS connection established from localhost" in log
    if security == "starttls":
        assert "starttls=1 auth=1" in log


def test_postfix_with_an_unknown_ca_pauses_the_pass(
    cli, engine, pki: Pki, postfix, smtp_settings, mailing
) -> None:
    _tls_settings(smtp_settings, postfix.starttls_port, "starttls", None)
    mailing_id = mailing(2)
    result = cli("mailing", "send", mailing_id)
    assert result.exit_code == 1
    assert "paused: TLS: the mail server's certificate is signed by an unknown" in result.stderr
    assert postfix.held() == []
    assert "auth=" not in postfix.log()


# -- TLS that breaks after STARTTLS was offered: temporary, the run goes on -----------------


class _OddStarttls:
    """Offers STARTTLS, then refuses it (454) or answers 220 and speaks plain text."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                try:
                    conn.sendall(b"220 odd.example ESMTP\r\n")
                    conn.recv(1000)  # EHLO
                    conn.sendall(b"250-odd.example\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n")
                    conn.recv(1000)  # STARTTLS
                    conn.sendall(self.answer)
                    conn.recv(1000)  # a ClientHello, or QUIT
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"454 4.7.0 TLS not available due to local problem\r\n", "STARTTLS: 454 4.7.0 TLS not"),
        (b"220 go ahead\r\nthis is not a TLS handshake\r\n", "TLS failure"),
    ],
    ids=["454", "garbage-handshake"],
)
def test_a_tls_failure_that_is_not_the_certificate_is_deferred(
    cli, engine, smtp_settings, mailing, answer: bytes, reason: str
) -> None:
    server = _OddStarttls(answer)
    try:
        smtp_settings(
            server.port, smtp_security="starttls", smtp_username=USER, smtp_password=PASSWORD
        )
        mailing_id = mailing(2)
        result = cli("mailing", "send", mailing_id)
    finally:
        server.close()
    assert result.exit_code == 0, result.stderr  # not paused: try again later
    assert "deferred 2" in result.stderr
    log = attempts(engine, mailing_id)
    assert [a["status"] for a in log] == ["deferred", "deferred"]
    assert all(reason in (a["response"] or "") for a in log), [a["response"] for a in log]
    assert server.connections == 2  # a fresh connection for the next recipient


def test_config_check_names_an_untrusted_certificate(
    cli, pki: Pki, smtp_server, smtp_settings
) -> None:
    server = smtp_server(pki.self_signed)
    _tls_settings(
        smtp_settings,
        server.port,
        "starttls",
        pki.authority.ca_file,
        web_secret_key="shared-key-for-every-host",
        web_secure_cookies="true",
    )
    result = cli("config", "check")
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    assert lines == [
        f"serious: smtp localhost:{server.port}: TLS: the mail server's certificate is "
        "self-signed; trust it with smtp.ca_file"
    ]
    assert server.logins.seen == [] and server.handler.rcpts() == []
    _tls_settings(
        smtp_settings,
        server.port,
        "starttls",
        pki.self_signed.cert,
        web_secret_key="shared-key-for-every-host",
        web_secure_cookies="true",
    )
    fixed = cli("config", "check")
    assert fixed.exit_code == 0, fixed.stdout  # trusting the certificate itself works too
    assert server.logins.seen == [("PLAIN", USER, True)]  # and the login was tried, over TLS

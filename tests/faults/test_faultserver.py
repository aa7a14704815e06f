"""Proves each FaultServer scenario behaves as specified, using smtplib as the client."""

from __future__ import annotations

import smtplib
import socket
import threading
import time

import pytest

from tests.support.faultserver import SCENARIOS, FaultServer

T = 2.0  # client timeout for "normal" interactions
MSG = "Subject: hi\r\n\r\nhello\r\n.leading dot\r\n..two dots\r\nbye\r\n"
MSG_BYTES = MSG.encode()


def client(srv: FaultServer, timeout: float = T) -> smtplib.SMTP:
    return smtplib.SMTP(srv.host, srv.port, timeout=timeout)


def read_until(sock: socket.socket, marker: bytes, limit: float = T) -> bytes:
    buf = b""
    deadline = time.monotonic() + limit
    while marker not in buf:
        assert time.monotonic() < deadline, f"no {marker!r} in {buf!r}"
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


# --------------------------------------------------------------------- ok ----


def test_ok_sendmail_stores_unstuffed_message():
    with FaultServer() as srv:
        assert srv.host == "127.0.0.1" and srv.port > 0
        with client(srv) as s:
            code, resp = s.ehlo("client.test")
            assert code == 250
            assert s.has_extn("auth") and "PLAIN" in s.esmtp_features["auth"]
            assert not s.has_extn("starttls")
            assert s.sendmail("from@x.test", ["a@x.test", "b@x.test"], MSG) == {}
            assert s.noop()[0] == 250
            assert s.rset()[0] == 250
            assert s.sendmail("<>", ["c@x.test"], "Subject: 2\r\n\r\nx\r\n") == {}
        assert srv.messages == [
            ("from@x.test", ["a@x.test", "b@x.test"], MSG_BYTES),
            ("", ["c@x.test"], b"Subject: 2\r\n\r\nx\r\n"),
        ]
        assert srv.received_rcpts() == ["a@x.test", "b@x.test", "c@x.test"]
        assert srv.connections == 1


def test_ok_queue_id_helo_and_errors():
    with FaultServer() as srv, client(srv) as s:
        assert s.helo("client.test")[0] == 250
        assert s.mail("f@x.test")[0] == 250
        assert s.rcpt("t@x.test")[0] == 250
        code, resp = s.data(b"x\r\n")
        assert (code, resp) == (250, b"2.0.0 queued as 1")
        assert s.rcpt("t@x.test")[0] == 503  # no MAIL in this transaction
        assert s.docmd("BOGUS")[0] == 500
        assert s.docmd("mail", "from:<lower@x.test>")[0] == 250  # case-insensitive
        assert s.docmd("rset")[0] == 250


def test_ok_reject_returns_refused_dict():
    with FaultServer(reject={"Bad@x.test"}) as srv, client(srv) as s:
        refused = s.sendmail("f@x.test", ["good@x.test", "bad@x.test"], MSG)
        assert refused == {"bad@x.test": (550, b"5.1.1 no such user")}
        with pytest.raises(smtplib.SMTPRecipientsRefused) as ei:
            s.sendmail("f@x.test", ["bad@x.test"], MSG)
        assert ei.value.recipients["bad@x.test"][0] == 550
        assert srv.received_rcpts() == ["good@x.test"]


def test_550_some_is_ok_with_reject():
    with FaultServer("550_some", reject={"r@x.test"}) as srv, client(srv) as s:
        assert s.sendmail("f@x.test", ["r@x.test", "k@x.test"], MSG) == {
            "r@x.test": (550, b"5.1.1 no such user")
        }
        assert srv.received_rcpts() == ["k@x.test"]


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_ok_auth_good_and_bad(mech):
    with FaultServer() as srv:
        with client(srv) as s:
            s.ehlo()
            s.user, s.password = "user", "pass"
            # without initial response (334 challenge round-trips)...
            method = getattr(s, "auth_" + mech.lower())
            assert s.auth(mech, method, initial_response_ok=False)[0] == 235
        with client(srv) as s:
            s.ehlo()
            s.user, s.password = "user", "pass"
            # ...and with an initial response
            assert s.auth(mech, getattr(s, "auth_" + mech.lower()))[0] == 235
        with client(srv) as s, pytest.raises(smtplib.SMTPAuthenticationError) as ei:
            s.login("user", "wrong")
        assert ei.value.smtp_code == 535


def test_ok_login_helper():
    with FaultServer() as srv, client(srv) as s:
        assert s.login("user", "pass")[0] == 235


def test_535_auth():
    with FaultServer("535_auth") as srv, client(srv) as s:
        s.ehlo()
        assert "LOGIN" in s.esmtp_features["auth"]
        with pytest.raises(smtplib.SMTPAuthenticationError) as ei:
            s.login("user", "pass")
        assert ei.value.smtp_code == 535
        assert b"5.7.8" in ei.value.smtp_error


def test_concurrent_connections():
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            with client(srv) as s:
                s.sendmail("f@x.test", [f"r{i}@x.test"], MSG)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with FaultServer() as srv:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
        assert not errors
        assert sorted(srv.received_rcpts()) == sorted(f"r{i}@x.test" for i in range(8))
        assert srv.connections == 8


def test_client_disconnects_do_not_break_server():
    with FaultServer() as srv:
        for payload in (b"", b"EHLO x\r\n", b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\npartial"):
            with socket.create_connection((srv.host, srv.port), timeout=T) as raw:
                read_until(raw, b"\r\n")
                raw.sendall(payload)
        with client(srv) as s:  # still serving
            assert s.sendmail("f@x.test", ["t@x.test"], MSG) == {}
        assert srv.connections == 4


def test_unknown_scenario_rejected():
    with pytest.raises(ValueError):
        FaultServer("nope")
    assert "ok" in SCENARIOS and len(SCENARIOS) == 20


# --------------------------------------------------------------- timing ----


def test_slow_greeting():
    with FaultServer("slow_greeting", delay=0.6) as srv:
        t0 = time.monotonic()
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
            client(srv, timeout=0.3)
        assert time.monotonic() - t0 < 0.6
        t0 = time.monotonic()
        with client(srv) as s:
            assert time.monotonic() - t0 >= 0.5
            assert s.sendmail("f@x.test", ["t@x.test"], MSG) == {}


def test_silent():
    with FaultServer("silent") as srv:
        t0 = time.monotonic()
        # smtplib turns the read timeout into SMTPServerDisconnected("...timed out")
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
            client(srv, timeout=1)
        assert time.monotonic() - t0 < 1.5
        raw = socket.create_connection((srv.host, srv.port), timeout=0.3)
        with raw, pytest.raises(TimeoutError):
            raw.recv(1)
        # The server counts a connection on its own thread: on a busy machine, a moment later.
        deadline = time.monotonic() + 5
        while srv.connections < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert srv.connections == 2


def test_slow_drip_each_read_fast_whole_reply_slow():
    with (
        FaultServer("slow_drip") as srv,
        socket.create_connection((srv.host, srv.port), timeout=1.0) as raw,
    ):
        t0 = time.monotonic()
        got = b""
        while time.monotonic() - t0 < 1.2:
            got += raw.recv(100)  # never times out: a byte every 0.3 s
        assert got.startswith(b"22")
        assert 3 <= len(got) <= 6
        assert b"\r\n" not in got


def test_slow_drip_full_transaction_with_fast_drip():
    # Same protocol with a tiny interval, to check the content of each reply.
    srv = FaultServer("slow_drip")
    srv.drip_interval = 0.001
    with srv, client(srv) as s:
        s.ehlo()
        assert s.mail("f@x.test")[0] == 250
        assert s.rcpt("t@x.test")[0] == 250
        code, resp = s.data(b"x\r\n")
        assert (code, resp) == (250, b"x" * 200)
        assert srv.received_rcpts() == ["t@x.test"]


# -------------------------------------------------------------- garbage ----


def test_garbage():
    with FaultServer("garbage") as srv:
        s = client(srv)  # greeting is fine
        try:
            assert s.ehlo()[0] == -1
            assert s.helo()[0] == -1
        finally:
            s.close()
        s = client(srv)
        try:
            with pytest.raises(smtplib.SMTPHeloError) as ei:
                s.sendmail("f@x.test", ["t@x.test"], MSG)
            assert ei.value.smtp_code == -1
        finally:
            s.close()
    with (
        FaultServer("garbage") as srv,
        socket.create_connection((srv.host, srv.port), timeout=T) as raw,
    ):
        assert read_until(raw, b"\r\n").startswith(b"220 ")
        raw.sendall(b"NOOP\r\n")
        assert read_until(raw, b"\r\n") == b"xyz\x00\xff not smtp\r\n"


def test_garbage_mail():
    with FaultServer("garbage_mail") as srv, client(srv) as s:
        assert s.ehlo()[0] == 250
        with pytest.raises(smtplib.SMTPSenderRefused) as ei:
            s.sendmail("f@x.test", ["t@x.test"], MSG)
        assert ei.value.smtp_code == 25
        with socket.create_connection((srv.host, srv.port), timeout=T) as raw:
            read_until(raw, b"\r\n")
            raw.sendall(b"MAIL FROM:<f@x.test>\r\n")
            assert read_until(raw, b"\r\n") == b"25\r\n"
        assert srv.messages == []


def test_garbage_quit():
    with FaultServer("garbage_quit") as srv:
        s = client(srv)
        try:
            assert s.sendmail("f@x.test", ["t@x.test"], MSG) == {}
            code, _ = s.docmd("QUIT")
            assert code == -1
        finally:
            s.close()
        assert srv.received_rcpts() == ["t@x.test"]
        with socket.create_connection((srv.host, srv.port), timeout=T) as raw:
            read_until(raw, b"\r\n")
            raw.sendall(b"QUIT\r\n")
            assert read_until(raw, b"garbage") == b"\x00\xffgarbage"
            assert raw.recv(10) == b""  # closed


def test_line_too_long():
    with FaultServer("line_too_long") as srv:
        with pytest.raises(smtplib.SMTPResponseException) as ei:
            client(srv)
        assert ei.value.smtp_code == 500
        assert ei.value.smtp_error == "Line too long."
        with socket.create_connection((srv.host, srv.port), timeout=T) as raw:
            line = read_until(raw, b"\r\n")
            assert line.startswith(b"220 ") and len(line) == 10_000 + 2


# ------------------------------------------------------- error replies ----


def test_421_greeting():
    with FaultServer("421_greeting") as srv:
        with pytest.raises(smtplib.SMTPConnectError) as ei:
            client(srv)
        assert ei.value.smtp_code == 421
        assert b"4.3.2" in ei.value.smtp_error


@pytest.mark.parametrize(
    ("scenario", "code", "text"),
    [
        ("451_rcpt", 451, b"4.3.0 temporary local problem"),
        ("452_rcpt", 452, b"4.5.3 too many recipients"),
    ],
)
def test_rcpt_temp_failures(scenario, code, text):
    with FaultServer(scenario) as srv, client(srv) as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as ei:
            s.sendmail("f@x.test", ["a@x.test", "b@x.test"], MSG)
        assert ei.value.recipients == {"a@x.test": (code, text), "b@x.test": (code, text)}
        assert srv.messages == []


# ------------------------------------------------------ data-phase faults ----


def test_drop_data():
    with FaultServer("drop_data") as srv:
        s = client(srv)
        try:
            s.ehlo()
            s.mail("f@x.test")
            s.rcpt("t@x.test")
            t0 = time.monotonic()
            with pytest.raises(smtplib.SMTPServerDisconnected):
                s.data(MSG_BYTES * 1000)
            assert time.monotonic() - t0 < 1.5
        finally:
            s.close()
        assert srv.messages == []


def test_no_final_reply():
    with FaultServer("no_final_reply") as srv:
        s = client(srv, timeout=0.5)
        try:
            s.ehlo()
            s.mail("f@x.test")
            s.rcpt("t@x.test")
            t0 = time.monotonic()
            with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
                s.data(MSG_BYTES)
            assert 0.4 <= time.monotonic() - t0 < 1.5
        finally:
            s.close()
        assert srv.messages == []


def test_silent_after_dot_keeps_the_message_and_never_answers():
    with FaultServer("silent_after_dot") as srv:
        s = client(srv, timeout=0.5)
        try:
            s.ehlo()
            s.mail("f@x.test")
            s.rcpt("t@x.test")
            with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
                s.data(MSG_BYTES)
        finally:
            s.close()
        assert srv.received_rcpts() == ["t@x.test"]


# ------------------------------------------------------------ refuse ----


def _wait_until_up(srv: FaultServer, limit: float = 3.0) -> float:
    t0 = time.monotonic()
    while True:
        try:
            with socket.create_connection((srv.host, srv.port), timeout=T):
                return time.monotonic() - t0
        except ConnectionRefusedError:
            assert time.monotonic() - t0 < limit
            time.sleep(0.02)


def test_refuse_then_recover_same_port():
    with FaultServer("refuse", down_for=1.0) as srv:
        port = srv.port
        t0 = time.monotonic()
        with pytest.raises(ConnectionRefusedError):
            client(srv)
        assert time.monotonic() - t0 < 0.2
        assert 0.7 <= _wait_until_up(srv) <= 1.5
        assert srv.port == port
        with client(srv) as s:  # behaves as "ok" once back
            assert s.sendmail("f@x.test", ["t@x.test"], MSG) == {}
        # a new down period on demand
        srv.set_scenario("refuse")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((srv.host, srv.port), timeout=T).close()
        # switching away ends the down period immediately
        srv.set_scenario("ok")
        with client(srv) as s:
            assert s.noop()[0] == 250


# -------------------------------------------------------------- control ----


def test_set_scenario_affects_new_connections_only():
    with FaultServer("421_greeting") as srv:
        with pytest.raises(smtplib.SMTPConnectError):
            client(srv)
        srv.set_scenario("ok")
        with client(srv) as s:
            srv.set_scenario("451_rcpt")
            assert s.sendmail("f@x.test", ["t@x.test"], MSG) == {}  # still "ok"
        with client(srv) as s, pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("f@x.test", ["t@x.test"], MSG)
        assert srv.scenario == "451_rcpt"
        assert srv.connections == 3


def test_stop_is_prompt_with_stuck_connections():
    srv = FaultServer("silent").start()
    raws = [socket.create_connection((srv.host, srv.port), timeout=T) for _ in range(2)]
    srv.set_scenario("slow_drip")
    raws.append(socket.create_connection((srv.host, srv.port), timeout=T))
    srv.set_scenario("slow_greeting")
    raws.append(socket.create_connection((srv.host, srv.port), timeout=T))
    srv.set_scenario("no_final_reply")
    s = client(srv)
    s.ehlo()
    s.mail("f@x.test")
    s.rcpt("t@x.test")
    s.send(b"DATA\r\n")
    assert s.getreply()[0] == 354
    s.send(b"body\r\n.\r\n")
    time.sleep(0.3)
    try:
        t0 = time.monotonic()
        srv.stop()
        assert time.monotonic() - t0 < 1.0
        assert not [t for t in threading.enumerate() if t.name.startswith("faultserver")]
        for raw in raws:  # server side is closed: EOF (after any dripped bytes)
            raw.settimeout(1.0)
            try:
                while raw.recv(100):
                    pass
            except ConnectionResetError:
                pass
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((srv.host, srv.port), timeout=T).close()
    finally:
        s.close()
        for raw in raws:
            raw.close()

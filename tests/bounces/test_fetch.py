"""`mailctl bounces fetch` against a real Dovecot: IMAP and POP3, implicit TLS and STARTTLS,
move or delete after processing; a refused login or a dead server is one line and exit 1."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from mailctl.db import session_scope
from mailctl.models import BounceMailbox
from tests.bounces import corpus
from tests.bounces.test_import import _envelopes, _suppressed
from tests.support.dovecot import PASSWORD, USER, Dovecot
from tests.support.ledger import ledger
from tests.support.smtp import Sink, free_port


def _mailbox_env(server: Dovecot, protocol: str, security: str, **extra: object) -> dict:
    port = server.ports[protocol + ("s" if security == "ssl" else "")]
    env = {
        "bounces_domain": "bounces.example.org",
        "bounces_host": "127.0.0.1",
        "bounces_port": port,
        "bounces_protocol": protocol,
        "bounces_security": security,
        "bounces_username": USER,
        "bounces_password": PASSWORD,
        "bounces_ca_file": server.ca_file,
        "bounces_timeout": 5,
    }
    env.update(extra)
    return env


def _ok(result):
    assert result.exit_code == 0, f"{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.parametrize(
    ("protocol", "security", "after"),
    [
        ("imap", "ssl", "move"),
        ("imap", "starttls", "delete"),
        ("pop3", "ssl", "delete"),
        ("pop3", "starttls", "delete"),
    ],
)
def test_fetch_reads_processes_and_clears_the_mailbox(
    cli,
    engine,
    owner,
    dovecot: Dovecot,
    sink: Sink,
    smtp_settings,
    make_mailing,
    send_all,
    protocol: str,
    security: str,
    after: str,
) -> None:
    settings = smtp_settings(
        sink.port, **_mailbox_env(dovecot, protocol, security, bounces_after=after)
    )
    clients = ["ann@example.com", "bob@example.com", "cy@example.com"]
    mailing_id = make_mailing(clients)
    assert send_all(settings) == 3
    senders = _envelopes(sink)
    dovecot.deliver(
        corpus.postfix("ann@example.com", senders["ann@example.com"]),
        corpus.arf("bob@example.com", senders["bob@example.com"]),
        corpus.gmail("cy@example.com", senders["cy@example.com"], temporary=True),
        corpus.autoreply(senders["ann@example.com"]),
    )
    result = _ok(cli("bounces", "fetch", "--json"))
    summary = json.loads(result.stdout)
    assert summary["processed"] == 4
    assert (summary["hard"], summary["complaints"], summary["soft"]) == (1, 1, 1)
    assert summary["ignored"] == 1
    assert "processed 4: 1 hard, 1 soft, 1 complaints, 1 ignored" in result.stderr
    assert _suppressed(engine, owner.id) == {
        "ann@example.com": "bounce",
        "bob@example.com": "complaint",
    }
    rows = ledger(engine, mailing_id)
    assert [rows[a]["bounce"] for a in clients] == ["hard", "complaint", "soft"]
    # Nothing is left in the inbox: moved to the folder, or deleted.
    assert dovecot.count() == 0
    if after == "move":
        assert dovecot.count("mailctl-processed") == 4
    # The next fetch finds nothing new.
    again = json.loads(_ok(cli("bounces", "fetch", "--json")).stdout)
    assert again["processed"] == 0
    with session_scope(engine) as session:
        (state,) = session.exec(select(BounceMailbox)).all()
        assert state.last_error is None and state.last_ok_at is not None
        assert state.processed_total == 4
        assert state.name.startswith(f"{protocol}://{USER}@127.0.0.1:")


def test_a_message_seen_twice_counts_once(
    cli, engine, owner, dovecot: Dovecot, sink: Sink, smtp_settings, make_mailing, send_all
) -> None:
    """A crash after the commit and before the move leaves the message in the mailbox."""
    settings = smtp_settings(sink.port, **_mailbox_env(dovecot, "imap", "ssl"))
    make_mailing(["ann@example.com"])
    send_all(settings)
    bounce = corpus.gmail("ann@example.com", _envelopes(sink)["ann@example.com"], temporary=True)
    dovecot.deliver(bounce)
    assert json.loads(_ok(cli("bounces", "fetch", "--json")).stdout)["soft"] == 1
    dovecot.deliver(bounce)  # the same report again
    summary = json.loads(_ok(cli("bounces", "fetch", "--json")).stdout)
    assert (summary["soft"], summary["duplicates"]) == (0, 1)


@pytest.mark.parametrize(("protocol", "security"), [("imap", "ssl"), ("pop3", "starttls")])
def test_a_wrong_password_is_one_line_and_leaves_the_mail(
    cli, engine, dovecot: Dovecot, smtp_settings, protocol: str, security: str
) -> None:
    env = _mailbox_env(
        dovecot, protocol, security, bounces_password="wrong", bounces_after="delete"
    )
    smtp_settings(1, **env)
    dovecot.deliver(corpus.autoreply("news@example.org"))
    result = cli("bounces", "fetch")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: bounce mailbox {protocol}://{USER}@127.0.0.1:")
    assert "login refused" in line and "Authentication failed" in line
    assert dovecot.count() == 1
    with session_scope(engine) as session:
        (state,) = session.exec(select(BounceMailbox)).all()
        assert "login refused" in (state.last_error or "")
        assert state.last_ok_at is None


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_dead_server_is_one_line(cli, engine, smtp_settings, protocol: str) -> None:
    port = free_port()  # nothing listens there
    smtp_settings(
        1,
        bounces_host="127.0.0.1",
        bounces_port=port,
        bounces_protocol=protocol,
        bounces_username=USER,
        bounces_password=PASSWORD,
        bounces_after="delete",
        bounces_timeout=2,
    )
    result = cli("bounces", "fetch")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: bounce mailbox {protocol}://{USER}@127.0.0.1:{port}"
        f"{'/INBOX' if protocol == 'imap' else ''}: cannot connect to 127.0.0.1:{port}:"
        " connection refused"
    )


def test_an_untrusted_certificate_and_bad_settings(
    cli, engine, dovecot: Dovecot, smtp_settings
) -> None:
    smtp_settings(1, **_mailbox_env(dovecot, "imap", "ssl", bounces_ca_file=""))
    result = cli("bounces", "fetch")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "certificate" in line and "bounces.ca_file" in line
    smtp_settings(1, **_mailbox_env(dovecot, "pop3", "ssl"))  # after = move
    result = cli("bounces", "fetch")
    assert result.exit_code == 1
    assert "with POP3 set bounces.after = delete" in result.stderr
    smtp_settings(1, bounces_host="")
    result = cli("bounces", "fetch")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: no bounce mailbox: set bounces.host (and username, password)"
    )


def test_the_daemon_fetches_on_its_own(
    engine, owner, dovecot: Dovecot, sink: Sink, smtp_settings, make_mailing, send_all
) -> None:
    import threading

    from mailctl.scheduling.daemon import Daemon
    from tests.support.procs import wait_for

    settings = smtp_settings(
        sink.port, scheduler_tick_seconds=1, **_mailbox_env(dovecot, "imap", "ssl")
    )
    make_mailing(["ann@example.com"])
    send_all(settings)
    dovecot.deliver(corpus.exim("ann@example.com", _envelopes(sink)["ann@example.com"]))
    daemon = Daemon(engine, settings)
    thread = threading.Thread(target=lambda: daemon.run(install_signals=False))
    thread.start()
    try:
        wait_for(lambda: _suppressed(engine, owner.id), timeout=60, what="the bounce recorded")
        # Moved once recorded (a stop in between would leave it for the next fetch).
        wait_for(
            lambda: dovecot.count() == 0 and dovecot.count("mailctl-processed") == 1,
            timeout=60,
            what="the message moved",
        )
    finally:
        daemon.request_stop("test")
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert _suppressed(engine, owner.id) == {"ann@example.com": "bounce"}

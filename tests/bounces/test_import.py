"""`mailctl bounces import`: a DSN for a message really sent marks its row and suppresses the
address; soft bounces only past the limit; complaints at once; the next run skips them."""

from __future__ import annotations

import json
import mailbox
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from mailctl.config import load_settings
from mailctl.db import session_scope, utcnow
from mailctl.models import Bounce, Suppression
from mailctl.sending.verp import ReturnPath
from mailctl.services.bounces import Report, Rules, record_bounce
from mailctl.services.suppressions import is_suppressed
from tests.bounces import corpus
from tests.support.ledger import ledger
from tests.support.smtp import Sink


def _ok(result):
    assert result.exit_code == 0, f"{result.stdout}\n{result.stderr}"
    return result


def _suppressed(engine, owner_id: int) -> dict[str, str]:
    with session_scope(engine) as session:
        rows = session.exec(select(Suppression).where(Suppression.owner_id == owner_id)).all()
        return {r.email_key or "": r.reason for r in rows if r.removed_at is None}


def _envelopes(sink: Sink) -> dict[str, str]:
    return {e.rcpt_tos[0]: e.mail_from for e in sink.handler.envelopes}


def _sent_mailing(engine, sink, smtp_settings, make_mailing, send_all, clients):
    settings = smtp_settings(sink.port, bounces_domain="bounces.example.org")
    mailing_id = make_mailing(clients)
    assert send_all(settings) == len(clients)
    return settings, mailing_id, _envelopes(sink)


def test_verp_round_trip_marks_the_row_and_the_next_run_skips_the_address(
    cli, engine, owner, sink: Sink, smtp_settings, make_mailing, send_all, tmp_path: Path
) -> None:
    clients = ["ann@example.com", "bob@example.com", "cy@example.com"]
    settings, mailing_id, senders = _sent_mailing(
        engine, sink, smtp_settings, make_mailing, send_all, clients
    )
    # The remote server rewrote the recipient's case in its report; the token still decides.
    report = tmp_path / "bounce.eml"
    report.write_bytes(corpus.postfix("BOB@example.com", senders["bob@example.com"]))
    result = _ok(cli("bounces", "import", report, "--json"))
    summary = json.loads(result.stdout)
    assert (summary["processed"], summary["hard"], summary["suppressed"]) == (1, 1, 1)
    assert "processed 1: 1 hard, 0 soft, 0 complaints, 0 ignored" in result.stderr
    rows = ledger(engine, mailing_id)
    assert rows["bob@example.com"]["state"] == "sent"  # sent, and later bounced
    assert rows["bob@example.com"]["bounce"] == "hard"
    assert rows["bob@example.com"]["bounced_at"] is not None
    assert {rows[a]["bounce"] for a in ("ann@example.com", "cy@example.com")} == {None}
    assert _suppressed(engine, owner.id) == {"bob@example.com": "bounce"}
    with session_scope(engine) as session:
        (bounce,) = session.exec(select(Bounce)).all()
        assert bounce.delivery_id == rows["bob@example.com"]["id"]
        assert (bounce.kind, bounce.status, bounce.source) == ("hard", "5.1.1", "mail")
        assert "User unknown" in bounce.reason

    # The next run to the same clients leaves bob out, within one import.
    sink.handler.envelopes.clear()
    message = _ok(cli("message", "add", "--subject", "Again", "--body", "Hi", as_=owner.email))
    result = _ok(
        cli(
            "mailing",
            "add",
            "--message",
            message.stdout.split()[-1],
            "--all-clients",
            "--start",
            "now",
            "--every",
            "once",
            as_=owner.email,
        )
    )
    second = int(result.stdout.split()[0])
    assert "sent 2" in result.stderr
    assert sorted(_envelopes(sink)) == ["ann@example.com", "cy@example.com"]
    assert ledger(engine, second)["bob@example.com"]["state"] == "skipped"
    assert ledger(engine, second)["bob@example.com"]["last_reply"] == "suppressed (bounce)"

    # The same report imported again counts once.
    again = json.loads(_ok(cli("bounces", "import", report, "--json")).stdout)
    assert (again["hard"], again["duplicates"]) == (0, 1)
    with session_scope(engine) as session:
        assert len(session.exec(select(Bounce)).all()) == 1


def test_a_maildir_and_an_mbox_of_every_format(
    cli, engine, owner, sink: Sink, smtp_settings, make_mailing, send_all, tmp_path: Path
) -> None:
    names = sorted(corpus.FORMATS)
    clients = [f"{name}@example.com" for name in names]
    _, mailing_id, senders = _sent_mailing(
        engine, sink, smtp_settings, make_mailing, send_all, clients
    )
    maildir = mailbox.Maildir(tmp_path / "Bounces", create=True)
    mbox = mailbox.mbox(tmp_path / "bounces.mbox", create=True)
    for index, name in enumerate(names):
        build = corpus.FORMATS[name][0]
        raw = build(f"{name}@example.com", senders[f"{name}@example.com"])
        (maildir if index % 2 else mbox).add(raw)
    maildir.add(corpus.autoreply(senders[clients[0]]))
    mbox.add(corpus.delivered(clients[1], senders[clients[1]]))
    maildir.close()
    mbox.close()
    result = _ok(
        cli("bounces", "import", tmp_path / "Bounces", tmp_path / "bounces.mbox", "--json")
    )
    summary = json.loads(result.stdout)
    kinds = [corpus.FORMATS[n][1] for n in names]
    assert summary["processed"] == len(names) + 2
    assert summary["hard"] == kinds.count("hard")
    assert summary["soft"] == kinds.count("soft")
    assert summary["complaints"] == kinds.count("complaint")
    assert summary["ignored"] == 2
    assert summary["unmatched"] == 0
    rows = ledger(engine, mailing_id)
    for name, kind in zip(names, kinds, strict=True):
        assert rows[f"{name}@example.com"]["bounce"] == kind, name
    blocked = _suppressed(engine, owner.id)
    for name, kind in zip(names, kinds, strict=True):
        expected = {"hard": "bounce", "complaint": "complaint", "soft": None}[kind]
        assert blocked.get(f"{name}@example.com") == expected, name


def test_soft_bounces_suppress_only_past_the_limit(
    engine, owner, sink: Sink, smtp_settings, make_mailing, remail, send_all
) -> None:
    """Soft bounces of three different messages within 15 days; warnings repeated about one
    message count once, and older ones not at all."""
    settings = smtp_settings(sink.port, bounces_domain="bounces.example.org")
    mailings = [make_mailing(["ann@example.com"])]
    assert send_all(settings) == 1
    for _ in range(3):
        mailings.append(remail(["ann@example.com"]))
        assert send_all(settings) == 1
    rules = Rules.from_settings(settings)
    verp = ReturnPath.from_settings(settings)
    refs = []
    for mailing_id in mailings:
        row = ledger(engine, mailing_id)["ann@example.com"]
        refs.append(verp.read(verp.token(mailing_id, row["run_id"], row["client_id"])))

    def soft(n: int, message: int, days_ago: float = 0) -> bool:
        with session_scope(engine) as session:
            return record_bounce(
                session,
                report=Report(
                    email="ann@example.com",
                    kind="soft",
                    source="mail",
                    ref=f"r{n}",
                    status="4.2.2",
                    reason="mailbox full",
                    reference=refs[message],
                    received_at=utcnow() - timedelta(days=days_ago),
                ),
                rules=rules,
            ).suppressed

    assert not soft(1, message=0, days_ago=20)  # outside the 15 days: does not count
    assert not soft(2, message=1, days_ago=10)
    assert not soft(3, message=2)
    assert not soft(4, message=2)  # the same message again: still two messages
    assert _suppressed(engine, owner.id) == {}
    assert soft(5, message=3)  # the third message within 15 days
    with session_scope(engine) as session:
        assert is_suppressed(
            session, owner_id=owner.id, email="ann@example.com", secret=rules.secret
        )
        (entry,) = session.exec(select(Suppression)).all()
        assert entry.note.startswith("3 messages soft-bounced in 15 days, the last: 4.2.2")
    assert [ledger(engine, m)["ann@example.com"]["bounce"] for m in mailings] == ["soft"] * 4


def test_without_a_token_the_address_maps_to_the_owner_who_mailed_it(
    cli, engine, owner, make_user, sink: Sink, smtp_settings, make_mailing, send_all, tmp_path
) -> None:
    _sent_mailing(engine, sink, smtp_settings, make_mailing, send_all, ["dan@example.com"])
    other = make_user("user", email="other@example.com")
    assert _ok(cli("client", "add", "dan@example.com", as_="other@example.com"))
    # A forged token (wrong signature) names nothing: the address decides.
    forged = "news+1.1.1.000000000000@bounces.example.org"
    report = tmp_path / "exim.eml"
    report.write_bytes(corpus.exim("dan@example.com", forged))
    summary = json.loads(_ok(cli("bounces", "import", report, "--json")).stdout)
    assert summary["hard"] == 1
    assert _suppressed(engine, owner.id) == {"dan@example.com": "bounce"}
    assert _suppressed(engine, other.id) == {}  # never mailed by them: their list is theirs


def test_a_complaint_suppresses_at_once_and_outranks_a_bounce(
    cli, engine, owner, sink: Sink, smtp_settings, make_mailing, send_all, tmp_path
) -> None:
    _, mailing_id, senders = _sent_mailing(
        engine, sink, smtp_settings, make_mailing, send_all, ["eve@example.com"]
    )
    (tmp_path / "a.eml").write_bytes(corpus.gmail("eve@example.com", senders["eve@example.com"]))
    (tmp_path / "b.eml").write_bytes(corpus.arf("eve@example.com", senders["eve@example.com"]))
    _ok(cli("bounces", "import", tmp_path / "a.eml", tmp_path / "b.eml"))
    assert _suppressed(engine, owner.id) == {"eve@example.com": "complaint"}
    assert ledger(engine, mailing_id)["eve@example.com"]["bounce"] == "complaint"


def test_unknown_addresses_and_bad_input(cli, engine, make_user, tmp_path: Path) -> None:
    report = tmp_path / "x.eml"
    report.write_bytes(corpus.qmail("nobody@example.net", "news@example.org"))
    summary = json.loads(_ok(cli("bounces", "import", report, "--json")).stdout)
    assert (summary["processed"], summary["hard"], summary["unmatched"]) == (1, 0, 1)

    missing = cli("bounces", "import", report, tmp_path / "nope.mbox")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == f"error: {tmp_path / 'nope.mbox'}: no such file or directory"
    (tmp_path / "dir").mkdir()
    not_maildir = cli("bounces", "import", tmp_path / "dir")
    assert not_maildir.exit_code == 1
    assert "not a Maildir" in not_maildir.stderr
    assert len(not_maildir.stderr.strip().splitlines()) == 1
    make_user("user", email="u@example.com")
    refused = cli("bounces", "import", report, as_="u@example.com")
    assert refused.exit_code == 1
    assert refused.stderr.strip() == "error: a user cannot import or fetch bounces"


def test_import_on_a_terminal(cli, engine, tmp_path: Path) -> None:
    """On a pseudo-terminal, as a person runs it: the summary, and an error as one line."""
    import os
    import sys

    import pexpect

    report = tmp_path / "x.eml"
    report.write_bytes(corpus.autoreply("news@example.org"))
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    term = pexpect.spawn(
        sys.executable,
        ["-m", "mailctl", "bounces", "import", str(report)],
        env=env,
        encoding="utf-8",
        timeout=60,
    )
    term.expect(pexpect.EOF)
    term.close()
    assert term.exitstatus == 0, term.before
    text = term.before.replace("\r\n", "\n")
    assert "processed   1" in text and "ignored     1" in text
    assert "processed 1: 0 hard, 0 soft, 0 complaints, 1 ignored" in text
    term = pexpect.spawn(
        sys.executable,
        ["-m", "mailctl", "bounces", "import", str(tmp_path / "missing")],
        env=env,
        encoding="utf-8",
        timeout=60,
    )
    term.expect(pexpect.EOF)
    term.close()
    assert term.exitstatus == 1
    assert term.before.strip() == f"error: {tmp_path / 'missing'}: no such file or directory"


def test_erasure_scrubs_the_bounce_log(
    cli, engine, owner, sink: Sink, smtp_settings, make_mailing, send_all, tmp_path: Path
) -> None:
    _, _, senders = _sent_mailing(
        engine, sink, smtp_settings, make_mailing, send_all, ["ann@example.com"]
    )
    (tmp_path / "b.eml").write_bytes(corpus.postfix("ann@example.com", senders["ann@example.com"]))
    _ok(cli("bounces", "import", tmp_path / "b.eml"))
    with session_scope(engine) as session:
        (bounce,) = session.exec(select(Bounce)).all()
        assert "ann@example.com" in bounce.reason  # the diagnostic quotes the address
    _ok(cli("client", "erase", "1", "--yes", as_=owner.email))
    with session_scope(engine) as session:
        (bounce,) = session.exec(select(Bounce)).all()
        assert "ann@example.com" not in bounce.reason and "erased:" in bounce.reason
    # Still blocked: imported again, the address stays suppressed.
    _ok(cli("client", "add", "ann@example.com", as_=owner.email))
    with session_scope(engine) as session:
        assert is_suppressed(
            session,
            owner_id=owner.id,
            email="ann@example.com",
            secret=Rules.from_settings(load_settings()).secret,
        )


def test_a_bounce_is_a_webhook_event_for_its_owner(
    cli, engine, owner, sink: Sink, smtp_settings, make_mailing, send_all, tmp_path: Path
) -> None:
    from mailctl.models import User, WebhookDelivery
    from mailctl.services.webhooks import add_webhook

    _, mailing_id, senders = _sent_mailing(
        engine, sink, smtp_settings, make_mailing, send_all, ["ann@example.com"]
    )
    with session_scope(engine) as session:
        actor = session.get(User, owner.id)
        assert actor is not None
        add_webhook(
            session=session,
            actor=actor,
            url="https://hooks.example.org/in",
            events=["message.bounced"],
        )
    (tmp_path / "b.eml").write_bytes(corpus.postfix("ann@example.com", senders["ann@example.com"]))
    _ok(cli("bounces", "import", tmp_path / "b.eml"))
    _ok(cli("bounces", "import", tmp_path / "b.eml"))  # counted once: one event
    with session_scope(engine) as session:
        (queued,) = session.exec(select(WebhookDelivery)).all()
        body = json.loads(queued.body)
    assert body["event"] == "message.bounced"
    data = body["data"]
    assert (data["email"], data["kind"], data["status"]) == ("ann@example.com", "hard", "5.1.1")
    assert (data["mailing_id"], data["suppressed"], data["source"]) == (mailing_id, True, "mail")

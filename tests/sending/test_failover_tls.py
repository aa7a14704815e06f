"""A server whose certificate fails is taken out of rotation with that reason; the others
carry on and nobody is charged an attempt for it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from mailctl.config import load_settings
from mailctl.models import DeliveryAttempt, SmtpServerState
from mailctl.schedule import Clock
from tests.sending.test_tls import PASSWORD, USER, Pki, pki, smtp_server  # noqa: F401
from tests.support.ledger import ledger
from tests.support.relay import Relay


def test_a_server_with_a_bad_certificate_leaves_the_rotation_and_the_other_sends(
    engine,
    tmp_path: Path,
    monkeypatch,
    make_mailing,
    pki: Pki,  # noqa: F811
    smtp_server,  # noqa: F811
) -> None:
    from mailctl.services.delivery import run_pass

    bad = smtp_server(pki.self_signed)
    with Relay() as good:
        config = tmp_path / "servers.toml"
        config.write_text(
            '[delivery]\ntransport = "smtp"\nfrom_address = "news@example.org"\n'
            "attempt_deadline_seconds = 5\n[smtp]\ntimeout = 3\n"
            f'[[smtp.servers]]\nname = "bad"\nhost = "localhost"\nport = {bad.port}\n'
            f'security = "starttls"\nca_file = "{pki.authority.ca_file}"\n'
            f'username = "{USER}"\npassword = "{PASSWORD}"\n'
            f'[[smtp.servers]]\nname = "good"\nhost = "127.0.0.1"\nport = {good.port}\n'
        )
        monkeypatch.setenv("MAILCTL_CONFIG", str(config))
        emails = [f"t{i}@example.com" for i in range(8)]
        mailing_id = make_mailing(emails)
        settings = load_settings()
        summary = run_pass(
            engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="t"
        )
    assert summary.sent == 8 and summary.stopped is None, summary
    assert sorted(good.rcpts()) == sorted(emails)
    assert bad.handler.rcpts() == [] and bad.logins.seen == []  # no password to it, ever
    assert {r["attempts"] for r in ledger(engine, mailing_id).values()} == {1}
    with engine.connect() as conn:
        servers = set(conn.execute(select(DeliveryAttempt.server)).scalars())
        health = conn.execute(
            select(SmtpServerState.health).where(SmtpServerState.name == "bad")
        ).scalar_one()
    assert servers == {"good"}
    assert health.startswith("out of rotation for 30s: TLS: the mail server's certificate")
    assert "self-signed" in health

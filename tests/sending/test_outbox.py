"""The outbox transport: the default, so a fresh install never mails real people."""

from __future__ import annotations

import email
import email.policy
import os
from pathlib import Path

import pytest

from mailctl.sending.transport import OutboxTransport, SmtpTransport, make_transport

DATA = b"From: a@example.org\r\nTo: b@example.com\r\nSubject: s\r\n\r\nbody\r\n"


def test_each_message_is_one_eml_file(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path / "out")
    first = outbox.send(sender="a@example.org", recipient="b@example.com", data=DATA)
    second = outbox.send(sender="a@example.org", recipient="b@example.com", data=DATA)
    assert (first.status, first.code) == ("sent", 250)
    assert first.reply.startswith("written to outbox as ")
    files = sorted((tmp_path / "out").iterdir())
    assert len(files) == 2 and all(f.suffix == ".eml" for f in files)
    assert first.reply != second.reply  # never overwrites
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert msg["X-Envelope-From"] == "<a@example.org>"
    assert msg["X-Envelope-To"] == "<b@example.com>"
    assert msg["Subject"] == "s"
    outbox.close()


def test_file_names_are_safe(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path / "out")
    outbox.send(sender="a@example.org", recipient="../../etc/passwd@x.com", data=DATA)
    (path,) = (tmp_path / "out").iterdir()
    assert "/" not in path.name and not path.name.startswith(".")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_outbox_defers(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path / "out")
    (tmp_path / "out").chmod(0o500)
    try:
        outcome = outbox.send(sender="a@example.org", recipient="b@example.com", data=DATA)
    finally:
        (tmp_path / "out").chmod(0o700)
    assert outcome.status == "deferred"
    assert outcome.reply.startswith("outbox write failed")


def test_a_vanished_outbox_defers(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path / "gone")
    (tmp_path / "gone").rmdir()
    (tmp_path / "gone").write_text("now a file")
    outcome = outbox.send(sender="a@example.org", recipient="b@example.com", data=DATA)
    assert outcome.status == "deferred"
    assert outcome.reply.startswith("outbox write failed")
    assert outcome.connection_failure


def test_transport_is_chosen_by_config(settings, smtp_settings) -> None:
    assert settings.delivery.transport == "outbox"
    outbox = make_transport(settings)
    assert isinstance(outbox, OutboxTransport)
    assert outbox.directory == Path(settings.delivery.outbox_dir)
    smtp = make_transport(smtp_settings(2525))
    assert isinstance(smtp, SmtpTransport)
    assert (smtp.host, smtp.port, smtp.timeout, smtp.deadline) == ("127.0.0.1", 2525, 1.0, 3.0)
    smtp.close()


def test_smtp_password_from_env_or_file(smtp_settings, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    transport = make_transport(smtp_settings(25, smtp_password_file=secret))
    assert isinstance(transport, SmtpTransport) and transport.password == "from-file"
    transport.close()
    transport = make_transport(smtp_settings(25, smtp_password="from-env"))
    assert isinstance(transport, SmtpTransport) and transport.password == "from-env"
    transport.close()

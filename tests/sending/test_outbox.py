"""The outbox transport: the default, so a fresh install never mails real people."""

from __future__ import annotations

import email
import email.policy
import os
import resource
import signal
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


def test_an_outbox_that_cannot_be_made_defers_every_attempt(tmp_path: Path) -> None:
    """Under a file (root may write anywhere else): no exception out of the transport (the
    sender would stop mid-batch with its rows claimed), a deferred attempt that says where."""
    (tmp_path / "a-file").write_text("")
    before = set(tmp_path.iterdir())
    outbox = OutboxTransport(tmp_path / "a-file" / "out")
    for _ in range(2):
        outcome = outbox.send(sender="a@example.org", recipient="b@example.com", data=DATA)
        assert (outcome.status, outcome.connection_failure) == ("deferred", True)
        assert outcome.reply == f"outbox write failed: Not a directory ({tmp_path}/a-file/out)"
    assert set(tmp_path.iterdir()) == before and (tmp_path / "a-file").is_file()
    # The disk is writable again (the file moved away): the next attempt makes the folder.
    (tmp_path / "a-file").unlink()
    outcome = outbox.send(sender="a@example.org", recipient="b@example.com", data=DATA)
    assert outcome.status == "sent", outcome
    [written] = (tmp_path / "a-file" / "out").iterdir()
    assert written.read_bytes().endswith(DATA)


def test_a_write_cut_short_leaves_no_half_message(tmp_path: Path) -> None:
    """A full disk, as the kernel reports it to root too: a file-size limit (EFBIG)."""
    outbox = OutboxTransport(tmp_path / "out")
    big = DATA + b"x" * 100_000
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        outcome = outbox.send(sender="a@example.org", recipient="b@example.com", data=big)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert (outcome.status, outcome.connection_failure) == ("deferred", True)
    assert outcome.reply == f"outbox write failed: File too large ({tmp_path}/out)"
    assert list((tmp_path / "out").iterdir()) == []
    assert outbox.send(sender="a@example.org", recipient="b@example.com", data=big).status == (
        "sent"
    )

"""The return path of each message names its ledger row (VERP), signed."""

from __future__ import annotations

from sqlalchemy import select

from mailctl.models import Delivery
from mailctl.sending.verp import ReturnPath
from tests.support.smtp import Sink


def test_each_envelope_sender_names_its_ledger_row(
    engine, sink: Sink, smtp_settings, make_mailing, send_all
) -> None:
    settings = smtp_settings(sink.port, bounces_domain="Bounces.Example.org")
    mailing_id = make_mailing(["ann@example.com", "bob@example.com", "cy@example.com"])
    assert send_all(settings) == 3
    verp = ReturnPath.from_settings(settings)
    with engine.connect() as conn:
        rows = {
            r.email: r
            for r in conn.execute(
                select(Delivery.email, Delivery.run_id, Delivery.client_id).where(
                    Delivery.mailing_id == mailing_id
                )
            )
        }
    senders = set()
    for envelope in sink.handler.envelopes:
        (rcpt,) = envelope.rcpt_tos
        local, _, domain = envelope.mail_from.partition("@")
        assert domain == "bounces.example.org"
        assert local.startswith("news+")  # the from address's local part
        assert len(local) <= 64  # RFC 5321's limit for a local part
        ref = verp.find(envelope.mail_from)
        assert ref is not None
        assert (ref.mailing_id, ref.run_id, ref.client_id) == (
            mailing_id,
            rows[rcpt].run_id,
            rows[rcpt].client_id,
        )
        # The From header stays the from address: only the envelope changes.
        assert b"From: Example News <news@example.org>" in envelope.content
        senders.add(envelope.mail_from)
    assert len(senders) == 3


def test_without_a_bounce_domain_the_envelope_is_the_from_address(
    engine, sink: Sink, smtp_settings, make_mailing, send_all
) -> None:
    settings = smtp_settings(sink.port)
    make_mailing(["ann@example.com"])
    assert send_all(settings) == 1
    assert [e.mail_from for e in sink.handler.envelopes] == ["news@example.org"]


def test_a_local_part_of_its_own() -> None:
    verp = ReturnPath(
        secret="s", domain="b.example", local_part="bounce", from_address="news@example.org"
    )
    assert verp.sender(1, 2, 3).startswith("bounce+1.2.3.")


def test_forged_or_mangled_tokens_name_nothing() -> None:
    verp = ReturnPath(secret="s", domain="b.example", local_part="", from_address="n@x.org")
    token = verp.token(12345, 678, 9)
    assert verp.read(token) is not None
    assert verp.read(token.upper()) is not None  # an MTA that folded the case
    body, _, sig = token.rpartition(".")
    assert verp.read(f"{body}.{'0' * len(sig)}") is None
    assert verp.read(token.replace("9ix", "9iy", 1)) is None
    other = ReturnPath(secret="other", domain="b.example", local_part="", from_address="n@x.org")
    assert other.read(token) is None  # another installation's key
    assert verp.find(f"To: n+{token}@b.example") is not None
    assert verp.find("no token here n+1.2.3.abcdefabcdef@b.example") is None

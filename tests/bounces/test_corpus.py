"""Each MTA's bounce format and each ARF report is classified right, with its VERP token."""

from __future__ import annotations

import pytest

from mailctl.sending.verp import ReturnPath
from mailctl.services.bounce_parse import parse_report
from tests.bounces import corpus

VERP = ReturnPath(secret="k", domain="bounces.example.org", local_part="", from_address="n@x.org")
RETURN_PATH = VERP.sender(7, 8, 9)


@pytest.mark.parametrize("name", sorted(corpus.FORMATS))
def test_each_format_is_classified(name: str) -> None:
    build, kind, status = corpus.FORMATS[name]
    parsed = parse_report(build("Bob.Smith@Example.com", RETURN_PATH))
    assert parsed.kind == ("complaint" if kind == "complaint" else "bounce")
    assert [(f.email, f.kind) for f in parsed.findings] == [("bob.smith@example.com", kind)]
    assert parsed.findings[0].status == status
    assert parsed.findings[0].reason
    assert parsed.ref  # a Message-ID: the same report imported twice counts once
    found = VERP.find(parsed.addressed) or VERP.find(parsed.text)
    if name == "arf-redacted":
        assert found is None  # nothing left to name the row: the address decides
    else:
        assert found is not None and (found.mailing_id, found.run_id, found.client_id) == (7, 8, 9)


def test_the_diagnostic_is_kept() -> None:
    parsed = parse_report(corpus.exim("carol@example.net", RETURN_PATH))
    assert "550 5.1.1" in parsed.findings[0].reason
    parsed = parse_report(corpus.gmail("carol@example.net", RETURN_PATH))
    assert "does not exist" in parsed.findings[0].reason


@pytest.mark.parametrize(
    "raw",
    [
        corpus.autoreply(RETURN_PATH),
        corpus.delivered("bob@example.com", RETURN_PATH),
        corpus.arf("bob@example.com", RETURN_PATH, feedback="not-spam"),
        b"",
        b"\xff\xfe\x00garbage\r\n\r\n\x00\x01",
        b"Subject: hello\r\n\r\nJust a note.\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x",
    ],
    ids=["autoreply", "delivered", "not-spam", "empty", "binary", "plain", "broken-mime"],
)
def test_neither_bounce_nor_complaint(raw: bytes) -> None:
    parsed = parse_report(raw)
    assert parsed.kind == "none"
    assert parsed.findings == []

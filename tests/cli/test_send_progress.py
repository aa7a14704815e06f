"""`mailctl mailing send` on a terminal: a progress bar with the rate, time left and outcomes."""

from __future__ import annotations

import pytest

from tests.support.relay import Relay
from tests.support.terminal import run_on_pty


@pytest.mark.parametrize("quiet", [False, True], ids=["bar", "quiet"])
def test_send_on_a_terminal_shows_rate_and_outcomes_unless_quiet(
    cli, monkeypatch, quiet: bool
) -> None:
    with Relay(delay=0.03, reject=frozenset({"p0@example.com"})) as relay:
        for key, value in {
            "DELIVERY_TRANSPORT": "smtp",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": relay.port,
            "SMTP_CONNECTIONS": 1,
        }.items():
            monkeypatch.setenv(f"MAILCTL_{key}", str(value))
        for i in range(40):
            assert cli("client", "add", f"p{i}@example.com").exit_code == 0
        assert cli("message", "add", "--subject", "Hi", "--body", "Hello").exit_code == 0
        added = cli("mailing", "add", "--message", "1", "--all-clients", "--start", "+1h",
                    "--every", "once")  # fmt: skip
        assert added.exit_code == 0, added.output
        code, text = run_on_pty(
            ["mailing", "send", added.stdout.strip(), *(["--quiet"] if quiet else [])]
        )
    assert code == 0, text
    assert f"mailing {added.stdout.strip()}: sent 39, deferred 0, failed 1" in text
    if quiet:
        assert "msg/s" not in text
    else:
        assert "msg/s" in text and "sent " in text and "/40" in text
        assert "failed 1" in text.split("mailing ")[0]  # the bar counted the refusal

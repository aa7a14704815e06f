"""`mailctl mailing send` on a terminal: a progress bar with the rate, time left and outcomes."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys

import pytest

from tests.support.relay import Relay


def _on_terminal(argv: list[str]) -> tuple[int, str]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailctl", *argv],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    try:
        while select.select([master], [], [], 60)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        code = proc.wait(timeout=60)
    return code, b"".join(chunks).decode(errors="replace")


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
        code, text = _on_terminal(
            ["mailing", "send", added.stdout.strip(), *(["--quiet"] if quiet else [])]
        )
    assert code == 0, text
    assert f"mailing {added.stdout.strip()}: sent 39, deferred 0, failed 1" in text
    if quiet:
        assert "msg/s" not in text
    else:
        assert "msg/s" in text and "sent " in text and "/40" in text
        assert "failed 1" in text.split("mailing ")[0]  # the bar counted the refusal

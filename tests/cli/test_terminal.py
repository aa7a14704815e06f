"""Every command that draws something, on a real pseudo-terminal: tables, progress bars,
prompts, colours and the long-running commands' Ctrl-C. Colours on, and again with NO_COLOR.

The piped output (tab-separated, no escapes) is what the other CLI tests read; a person at a
terminal gets another code path, and this file is what keeps it working.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import terminal
from tests.support.cli import USER1, as_json, new_id, ok

LONG_EMAIL = "a.rather.long.address.for.wrapping@subdomain.example-company.example.org"
COLOURS = [pytest.param(True, id="colour"), pytest.param(False, id="no-colour")]


@pytest.fixture
def populated(cli, users, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """user1 with clients, a message and a mailing that went out (so it has a log); a post."""
    monkeypatch.setenv("MAILCTL_WEB_SECRET_KEY", "one-key-for-every-host")  # config check
    c1 = new_id(cli("client", "add", "ann@example.com", "--name", "Ann Lee", as_=USER1))
    new_id(
        cli("client", "add", LONG_EMAIL, "--name", "Long Name", "--comment", "x" * 80, as_=USER1)
    )
    message = new_id(
        cli("message", "add", "--subject", "Hi {{ client.first_name }}", "--body", "b", as_=USER1)
    )
    mailing = new_id(
        cli("mailing", "add", "--message", message, "--all-clients", "--start", "now", as_=USER1)
    )
    post = new_id(
        cli("blog", "add", "--title", "Spring news", "--content", "c", as_="editor@example.com")
    )
    return {"client": c1, "message": message, "mailing": mailing, "post": post}


def _is_table(screen: terminal.Screen) -> None:
    text = screen.text
    assert "┃" in text or "│" in text, text  # drawn by Rich, not tab-separated
    assert "\t" not in text


def _colours(screen: terminal.Screen, colour: bool) -> None:
    codes = terminal.colour_codes(screen.raw)
    if colour:
        assert "\x1b[" in screen.raw, "no styling at all on a colour terminal"
    else:
        assert codes == [], f"colour codes with NO_COLOR=1: {codes[:5]}"


TABLES = [
    (("--as", USER1, "client", "list"), ["ann@example.com", "Ann Lee", "Long Name"]),
    (("--as", USER1, "client", "list", "--search", "nobody"), ["(none)"]),
    (("--as", USER1, "message", "list"), ["Hi {{ client.first_name }}"]),
    (("--as", USER1, "mailing", "list"), ["finished"]),
    (("--as", USER1, "mailing", "logs", "{mailing}"), ["ann@example.com", "sent", "outbox"]),
    (("user", "list"), ["user1@example.com", "manager@example.com", "editor"]),
    (("--as", "editor@example.com", "blog", "list"), ["Spring news"]),
    (("config", "show"), ["smtp.host", "scheduler.timezone", "Europe/Berlin"]),
]


@pytest.mark.parametrize("colour", COLOURS)
@pytest.mark.parametrize(("args", "expected"), TABLES, ids=lambda v: " ".join(v[-3:]) or None)
def test_tables_are_drawn_on_a_terminal(populated, args, expected, colour: bool) -> None:
    args = [a.format(**populated) for a in args]
    screen = terminal.run(args, colour=colour).assert_clean()
    _is_table(screen)
    for text in expected:
        assert text in screen.text, (text, screen.text)
    _colours(screen, colour)


def test_a_narrow_terminal_wraps_long_cells_instead_of_failing(populated) -> None:
    screen = terminal.run(["--as", USER1, "client", "list"], width=60).assert_clean()
    _is_table(screen)
    lines = screen.text.splitlines()
    assert max(len(line) for line in lines) <= 60
    # The email column, read down: each address whole, folded over several lines.
    column = "".join(line.split("│")[2].strip() for line in lines if line.startswith("│"))
    assert "ann@example.com" in column and LONG_EMAIL in column


OTHERS = [
    (("--as", USER1, "client", "show", "{client}"), ["ann@example.com"]),
    (("--as", USER1, "message", "show", "{message}"), ["Hi {{ client.first_name }}"]),
    (("--as", USER1, "message", "preview", "{message}", "--client", "{client}"), ["Hi Ann"]),
    (("--as", USER1, "mailing", "show", "{mailing}"), ["finished"]),
    (("--as", USER1, "mailing", "report", "{mailing}"), ["success rate"]),
    (("--as", USER1, "stats"), ["total mailings"]),
    (("--as", "editor@example.com", "blog", "show", "{post}"), ["Spring news"]),
    (("user", "show", "user1@example.com"), ["user1@example.com"]),
    (("status",), ["daemons:", "waiting recipients:"]),
    (("config", "check"), ["warning: web.base_url is not set"]),
    (("db", "current"), ["up to date"]),
    (("db", "history"), ["base -> 0001"]),
    (("run-due",), ["runs started 0"]),
    (("--version",), ["mailctl "]),
    (("--help",), ["Usage: mailctl", "client", "mailing", "config"]),
    (("mailing", "--help"), ["send", "logs", "report"]),
    (("mailing", "add", "--help"), ["--every", "--all-clients"]),
]


@pytest.mark.parametrize("colour", COLOURS)
@pytest.mark.parametrize(("args", "expected"), OTHERS, ids=lambda v: " ".join(v[-3:]) or None)
def test_every_other_printing_command_works_on_a_terminal(
    populated, args, expected, colour: bool
) -> None:
    args = [a.format(**populated) for a in args]
    screen = terminal.run(args, colour=colour).assert_clean()
    for text in expected:
        assert text in screen.text, (text, screen.text)
    if not colour:
        _colours(screen, colour)
    elif "--help" in args:
        assert terminal.colour_codes(screen.raw), "help has no colours on a colour terminal"


@pytest.fixture
def slow_smtp(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """An aiosmtpd server taking 0.1 s per message, long enough to see a progress bar."""
    from aiosmtpd.controller import Controller

    from tests.support.smtp import Collector

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = Collector(delay=0.1)
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=5)
    controller.start()
    for key, value in {
        "DELIVERY_TRANSPORT": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": port,
        "DELIVERY_FROM_ADDRESS": "news@example.org",
        "WEB_BASE_URL": "https://mail.example.org",
    }.items():
        monkeypatch.setenv(f"MAILCTL_{key}", str(value))
    yield handler
    controller.stop()


@pytest.mark.parametrize("colour", COLOURS)
def test_sending_shows_a_progress_bar(cli, users, slow_smtp, colour: bool) -> None:
    for i in range(20):
        ok(cli("client", "add", f"reader{i}@example.com", as_=USER1))
    message = new_id(cli("message", "add", "--subject", "S", "--body", "b", as_=USER1))
    base = ("mailing", "add", "--message", message, "--all-clients", "--start", "now")
    stored = new_id(cli(*base, "--no-send", as_=USER1))

    screen = terminal.run(["--as", USER1, "mailing", "send", stored], colour=colour)
    screen.assert_clean()
    assert "sending" in screen.text and "━" in screen.text  # the bar, while it ran
    assert f"mailing {stored}: sent 20," in screen.text
    assert len(slow_smtp.rcpts()) == 20
    if not colour:
        _colours(screen, colour)

    # Creating a mailing that is due sends at once, with the same bar.
    created = terminal.run(["--as", USER1, *base], colour=colour).assert_clean()
    assert "━" in created.text and "sent 20," in created.text
    assert len(slow_smtp.rcpts()) == 40


def test_prompts_ask_twice_and_hide_the_password(cli, users) -> None:
    child = terminal.spawn(["user", "add", "newbie@example.com"])
    child.expect("Password: ")
    child.sendline("typed-secret-1")
    child.expect("Repeat for confirmation: ")
    child.sendline("typed-secret-1")
    screen = terminal.finish(child).assert_clean()
    assert "typed-secret-1" not in screen.text  # never echoed
    assert "added user" in screen.text

    child = terminal.spawn(["--as", USER1, "user", "passwd"])
    child.expect("New password: ")
    child.sendline("another-secret-2")
    child.expect("Repeat for confirmation: ")
    child.sendline("a-typo-here")
    child.expect("Error: The two entered values do not match.")
    child.expect("New password: ")
    child.sendline("another-secret-2")
    child.expect("Repeat for confirmation: ")
    child.sendline("another-secret-2")
    screen = terminal.finish(child).assert_clean()
    assert "password changed for user1@example.com" in screen.text


def test_ctrl_c_at_a_prompt_is_one_line(cli, users) -> None:
    child = terminal.spawn(["user", "add", "quitter@example.com"])
    child.expect("Password: ")
    child.sendintr()
    screen = terminal.finish(child)
    assert screen.status != 0
    assert "Traceback" not in screen.text
    assert screen.text.strip().splitlines()[-1] in ("aborted", "interrupted")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "ready"),
    [
        (["daemon", "--tick", "1"], "started: tick 1s"),
        (["web", "--port", "{port}"], "Application startup complete"),
        (["serve", "--port", "{port}"], "Application startup complete"),
    ],
    ids=["daemon", "web", "serve"],
)
def test_long_running_commands_stop_cleanly_on_ctrl_c(cli, args, ready: str) -> None:
    port = _free_port()
    child = terminal.spawn([a.format(port=port) for a in args])
    try:
        child.expect(ready, timeout=60)
        child.sendintr()
        screen = terminal.finish(child)
    finally:
        if child.isalive():
            child.terminate(force=True)
    assert screen.status == 0, screen.text
    assert "Traceback" not in screen.text


def test_serve_stops_its_scheduler_on_sigterm(cli) -> None:  # type: ignore[no-untyped-def]
    """A supervisor stops `mailctl serve` with SIGTERM: the panel and the scheduler both end,
    the scheduler's heartbeat says stopped, and the exit is 0."""
    import signal

    port = _free_port()
    child = terminal.spawn(["serve", "--port", str(port)])
    try:
        child.expect("Application startup complete", timeout=60)
        time.sleep(1)  # the scheduler's thread has started and beaten by now
        child.kill(signal.SIGTERM)
        screen = terminal.finish(child)
    finally:
        if child.isalive():
            child.terminate(force=True)
    assert screen.status == 0, screen.text
    assert "Traceback" not in screen.text and "received SIGTERM" in screen.text
    workers = as_json(cli("status", "--json"))["workers"]
    assert [w["state"] for w in workers] == ["stopped"], workers


@pytest.mark.parametrize("colour", COLOURS)
def test_demo_on_a_terminal(bare_cli, colour: bool) -> None:
    screen = terminal.run(["demo"], colour=colour).assert_clean()
    assert "demo data created" in screen.text
    assert "admin@demo.example" in screen.text
    assert "total mailings" in screen.text
    if not colour:
        _colours(screen, colour)

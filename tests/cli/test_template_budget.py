"""Template bombs from the shell: `message add`/`edit`/`preview` answer within the render
budget with one line and exit 1, through a pipe and on a terminal, and change nothing."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

import pytest
from sqlalchemy import update

from tests.support.cli import USER1, fails, new_id, ok

NESTED = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
CHAINED = "{{ (client.email * 50000) * 50000 }}"
DEEP = "{% if 1 %}" * 150 + "{% endif %}" * 150
# One slow step in C per loop iteration (a third of a second each), and a quadratic codec.
SLOW_STEPS = "{% set s = 'a' * 900000 %}{% for i in range(100000) %}{% if s | max %}{% endif %}"
SLOW_STEPS += "{% endfor %}"
CJK = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(3000))
PUNYCODE = f"{{% set s %}}{CJK}{{% endset %}}{{{{ s.encode('punycode') }}}}"
BOMBS = [
    (NESTED, "the template takes longer than 1s to render (render.time_budget_seconds)"),
    (CHAINED, "the template builds a value of more than 1,000,000 bytes"),
    (DEEP, "the template is nested too deeply"),
    (SLOW_STEPS, "the template takes longer than 1s to render (render.time_budget_seconds)"),
    (PUNYCODE, "not allowed in a template: the punycode codec"),
]


@pytest.fixture
def before(setup1, snapshot):  # type: ignore[no-untyped-def]
    state = snapshot()
    yield state
    assert snapshot() == state, "a refused command changed the database"


@pytest.mark.parametrize(
    ("bomb", "reason"), BOMBS, ids=["time", "size", "nesting", "slow-steps", "codec"]
)
def test_message_add_and_edit_refuse_a_bomb(cli, setup1, before, bomb, reason) -> None:
    attempts = [
        (("message", "add", "--subject", "Hi", "--body", bomb), "body"),
        (("message", "edit", setup1["message"], "--body", bomb), "body"),
    ]
    if len(bomb) <= 255:  # a subject is at most 255 characters of template
        attempts.append((("message", "edit", setup1["message"], "--subject", bomb), "subject"))
    for argv, field in attempts:
        began = time.monotonic()
        result = fails(cli(*argv, as_=USER1), f"error: {field}: {reason}")
        # A bound on runaway work (the slow steps ran 5.7 s before the clock was read after
        # every step), not a speed target.
        assert time.monotonic() - began < 5
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_preview_of_a_message_saved_over_budget_is_one_line(cli, setup1, engine) -> None:
    from mailctl.db import session_scope
    from mailctl.models import Message

    with session_scope(engine) as session:  # saved before the budgets (or under bigger ones)
        session.execute(update(Message).where(Message.id == setup1["message"]).values(body=NESTED))
    result = fails(
        cli("message", "preview", setup1["message"], "--client", setup1["clients"][0], as_=USER1),
        "error: the template takes longer than 1s to render (render.time_budget_seconds)",
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_budgets_come_from_the_settings(cli, setup1, monkeypatch) -> None:
    body = "{% for i in range(300) %}0123456789{% endfor %}"
    ok(cli("message", "add", "--subject", "S", "--body", body, as_=USER1))
    monkeypatch.setenv("MAILCTL_RENDER_MAX_OUTPUT_BYTES", "2000")
    fails(
        cli("message", "add", "--subject", "S", "--body", body, as_=USER1),
        "error: body: the template renders to more than 2,000 bytes (render.max_output_bytes)",
    )
    monkeypatch.setenv("MAILCTL_RENDER_TIME_BUDGET_SECONDS", "0")
    fails(
        cli("message", "list", as_=USER1),
        "render.time_budget_seconds must be at least 0.01, got 0.0",
    )


def _run(argv: list[str], *, terminal: bool) -> tuple[int, str, float]:
    """`python -m mailctl ARGV` through pipes, or with stdin/stdout/stderr on a pty."""
    command = [sys.executable, "-m", "mailctl", *argv]
    began = time.monotonic()
    if not terminal:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        return done.returncode, done.stderr, time.monotonic() - began
    master, slave = pty.openpty()
    proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            if not ready:
                raise AssertionError("no output from mailctl on the terminal")
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        code = proc.wait(timeout=60)
    return (
        code,
        b"".join(chunks).decode(errors="replace").replace("\r\n", "\n"),
        (time.monotonic() - began),
    )


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "pty"])
def test_a_bomb_from_a_real_shell(cli, terminal: bool) -> None:
    new_id(cli("client", "add", "ann@example.com"))  # the admin is the acting user
    code, err, took = _run(
        ["message", "add", "--subject", "Hi", "--body", NESTED], terminal=terminal
    )
    assert code == 1, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines == [
        "error: body: the template takes longer than 1s to render (render.time_budget_seconds)"
    ], err
    assert took < 30  # the interpreter's start-up included, on a busy machine

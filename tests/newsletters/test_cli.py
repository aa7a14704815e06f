"""`mailctl layout ...` and the message commands' new options, through pipes (CliRunner) and
on a pseudo-terminal, as a person types them."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pexpect

from tests.support.cli import fails, new_id, ok

GOOD = '<div class="x">{{ content }}</div><p><a href="{{ unsubscribe_url }}">Leave</a></p>'


def test_layout_commands(cli, tmp_path: Path) -> None:
    default = ok(cli("layout", "show", "default")).stdout
    assert "{{ content }}" in default and "{{ unsubscribe_url }}" in default
    assert json.loads(ok(cli("layout", "show", "default", "--json")).stdout)["name"] == "default"
    page = tmp_path / "layout.html"
    page.write_text(GOOD, encoding="utf-8")
    layout_id = new_id(cli("layout", "add", "--name", "Brand", "--html-file", page))
    rows = json.loads(ok(cli("layout", "list", "--json")).stdout)
    assert [(r["id"], r["name"]) for r in rows] == [(layout_id, "Brand")]
    assert json.loads(ok(cli("layout", "show", layout_id, "--json")).stdout)["html"] == GOOD
    ok(cli("layout", "edit", layout_id, "--name", "Brand 2"))
    fails(cli("layout", "edit", layout_id, "--html", "<p>{{ content }}</p>"), "unsubscribe link")
    fails(cli("layout", "add", "--name", "Brand 2", "--html", GOOD), "exists already")
    fails(cli("layout", "show", "nine"), "is not a layout id", code=2)
    fails(cli("layout", "show", 999), "layout 999 not found")

    mid = new_id(cli("message", "add", "--subject", "S", "--body", "**hi**", "--layout", layout_id))
    shown = json.loads(ok(cli("message", "show", mid, "--json")).stdout)
    assert (shown["format"], shown["layout_id"]) == ("markdown", layout_id)
    fails(cli("layout", "rm", layout_id), f"used by message {mid}")
    ok(cli("message", "edit", mid, "--layout", "default"))
    assert json.loads(ok(cli("message", "show", mid, "--json")).stdout)["layout_id"] is None
    ok(cli("layout", "rm", layout_id))
    fails(cli("message", "edit", mid, "--layout", "x1"), "not a layout id or 'default'", code=2)
    fails(cli("message", "edit", mid, "--format", "pdf"), "format must be one of")


def test_message_preview_parts(cli) -> None:
    cid = new_id(cli("client", "add", "ann@example.com", "--name", "Ann <Lee>"))
    mid = new_id(
        cli(
            "message",
            "add",
            "--subject",
            "For {{ client.first_name }}",
            "--body",
            "# Hi {{ client.full_name }}",
        )
    )
    text = ok(cli("message", "preview", mid, "--client", cid)).stdout
    assert text.startswith("Subject: For Ann\n\nHi Ann <Lee>\n")
    # The view link is the client's; the unsubscribe link is not (following it would
    # unsubscribe them).
    assert "[this client's own unsubscribe link]" in text and "/view/" in text
    html = ok(cli("message", "preview", mid, "--client", cid, "--part", "html")).stdout
    assert html.startswith("<!DOCTYPE html>") and "Hi Ann &lt;Lee&gt;</h1>" in html
    plain = new_id(cli("message", "add", "--subject", "S", "--body", "B", "--format", "text"))
    fails(cli("message", "preview", plain, "--client", cid, "--part", "html"), "has no HTML part")
    assert ok(cli("message", "preview", plain, "--client", cid)).stdout == "Subject: S\n\nB\n"


def _spawn(*args: str) -> pexpect.spawn:
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    return pexpect.spawn(
        sys.executable, ["-m", "mailctl", *args], env=env, encoding="utf-8", timeout=60
    )


def test_on_a_terminal(cli, tmp_path: Path) -> None:
    new_id(cli("client", "add", "ann@example.com", "--name", "Ann Lee"))
    page = tmp_path / "layout.html"
    page.write_text(GOOD, encoding="utf-8")
    child = _spawn("layout", "add", "--name", "Brand", "--html-file", str(page))
    child.expect("added layout 1")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    child = _spawn("layout", "list")
    child.expect("Layouts")  # a table's title: stdout is a terminal
    child.expect("Brand")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    child = _spawn("message", "add", "--subject", "Hi", "--body", "*x*", "--format", "nope")
    child.expect("error: format must be one of markdown, html, text, not 'nope'")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1 and "Traceback" not in (child.before or "")
    mid = new_id(cli("message", "add", "--subject", "Hi {{ client.first_name }}", "--body", "*x*"))
    child = _spawn("message", "preview", str(mid), "--client", "1")
    child.expect("Subject: Hi Ann")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    child = _spawn("message", "test", str(mid), "--to", "me@example.com")
    child.expect(f"sent a test of message {mid} to me@example.com")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

from __future__ import annotations

from pathlib import Path

from tests.support.cli import USER1, as_json, fails, new_id, ok


def test_message_commands(cli, users, tmp_path: Path) -> None:
    mid = new_id(
        cli(
            "message", "add", "--subject", "Hi {{ client.full_name }}", "--body", "Hello", as_=USER1
        )
    )
    rows = as_json(cli("message", "list", "--json", as_=USER1))
    assert [(r["id"], r["subject"]) for r in rows] == [(mid, "Hi {{ client.full_name }}")]
    assert ok(cli("message", "list", as_=USER1)).stdout.splitlines()[0].startswith("id\tsubject")
    assert as_json(cli("message", "show", mid, "--json", as_=USER1))["body"] == "Hello"
    assert "Hello" in ok(cli("message", "show", mid, as_=USER1)).stdout

    body = tmp_path / "body.txt"
    body.write_text("Dear {{ client.first_name }},\nnews.\n", encoding="utf-8")
    ok(
        cli(
            "message",
            "edit",
            mid,
            "--subject",
            "News for {{ client.full_name }}",
            "--body-file",
            body,
            "--format",
            "text",
            as_=USER1,
        )
    )
    shown = as_json(cli("message", "show", mid, "--json", as_=USER1))
    assert shown["subject"] == "News for {{ client.full_name }}"
    assert shown["body"].startswith("Dear {{ client.first_name }},")

    cid = new_id(cli("client", "add", "ann@example.com", "--name", "Ann Lee", as_=USER1))
    out = ok(cli("message", "preview", mid, "--client", cid, as_=USER1)).stdout
    assert out.splitlines()[:3] == ["Subject: News for Ann Lee", "", "Dear Ann,"]

    ok(cli("message", "rm", mid, as_=USER1))
    assert as_json(cli("message", "list", "--json", as_=USER1)) == []


def test_body_from_file(cli, users, tmp_path: Path) -> None:
    body = tmp_path / "body.txt"
    body.write_text("From a file\n", encoding="utf-8")
    mid = new_id(cli("message", "add", "--subject", "S", "--body-file", body, as_=USER1))
    assert as_json(cli("message", "show", mid, "--json", as_=USER1))["body"] == "From a file\n"


def test_the_body_is_kept_as_written(cli, users, tmp_path: Path, settings) -> None:
    """Indented lines, blank lines and the final newline survive saving and sending; only
    line endings become one kind."""
    import email
    import email.policy

    written = "  Dear {{ client.first_name }},\r\n\r\n\tan indented line\r\n    code()\r\n\n"
    expected = written.replace("\r\n", "\n")
    body = tmp_path / "body.txt"
    body.write_bytes(written.encode())
    mid = new_id(
        cli("message", "add", "--subject", "S", "--body-file", body, "--format", "text", as_=USER1)
    )
    assert as_json(cli("message", "show", mid, "--json", as_=USER1))["body"] == expected
    ok(cli("message", "edit", mid, "--body", "\n  second\rthird\n", as_=USER1))
    assert as_json(cli("message", "show", mid, "--json", as_=USER1))["body"] == (
        "\n  second\nthird\n"
    )
    ok(cli("message", "edit", mid, "--body-file", body, as_=USER1))

    cid = new_id(cli("client", "add", "ann@example.com", "--name", "Ann Lee", as_=USER1))
    preview = ok(cli("message", "preview", mid, "--client", cid, as_=USER1)).stdout
    assert preview == "Subject: S\n\n" + expected.replace("{{ client.first_name }}", "Ann")

    ok(cli("mailing", "add", "--message", mid, "--client", cid, "--start", "now", as_=USER1))
    [eml] = Path(settings.delivery.outbox_dir).glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    sent = msg.get_content().replace("\r\n", "\n")
    assert sent == expected.replace("{{ client.first_name }}", "Ann")

    fails(cli("message", "edit", mid, "--body", " \n\t\n", as_=USER1), "body must not be empty")


def test_body_and_body_file_are_exclusive(cli, users, tmp_path: Path, snapshot) -> None:
    before = snapshot()
    fails(cli("message", "add", "--subject", "S", as_=USER1), "--body", code=2)
    body = tmp_path / "b.txt"
    body.write_text("x")
    fails(
        cli("message", "add", "--subject", "S", "--body", "x", "--body-file", body, as_=USER1),
        "--body",
        code=2,
    )
    fails(
        cli("message", "add", "--subject", "S", "--body-file", tmp_path / "nope.txt", as_=USER1),
        "cannot read",
    )
    assert snapshot() == before


def test_message_in_use_cannot_be_removed(cli, setup1, snapshot) -> None:
    before = snapshot()
    fails(cli("message", "rm", setup1["message"], as_=USER1), "is used by mailing")
    assert snapshot() == before

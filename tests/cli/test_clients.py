from __future__ import annotations

from pathlib import Path

from tests.support.cli import USER1, as_json, fails, new_id, ok


def test_add_list_show_edit_rm(cli, users) -> None:
    cid = new_id(
        cli("client", "add", "Ann@Example.com", "--name", "Ann Lee", "--comment", "expo", as_=USER1)
    )
    rows = as_json(cli("client", "list", "--json", as_=USER1))
    assert [(r["id"], r["email"], r["full_name"]) for r in rows] == [
        (cid, "Ann@example.com", "Ann Lee")
    ]
    table = ok(cli("client", "list", as_=USER1)).stdout.splitlines()
    assert table[0].split("\t")[:3] == ["id", "email", "full_name"]
    assert "Ann Lee" in table[1]
    assert as_json(cli("client", "list", "--search", "nobody", "--json", as_=USER1)) == []
    assert as_json(cli("client", "show", cid, "--json", as_=USER1))["comment"] == "expo"
    assert "Ann Lee" in ok(cli("client", "show", cid, as_=USER1)).stdout
    ok(cli("client", "edit", cid, "--name", "Ann Smith", as_=USER1))
    assert as_json(cli("client", "show", cid, "--json", as_=USER1))["full_name"] == "Ann Smith"
    ok(cli("client", "rm", cid, as_=USER1))
    assert as_json(cli("client", "list", "--json", as_=USER1)) == []


def test_import_export(cli, users, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text(
        "email,full_name,comment\na@example.com,A One,x\nb@example.com,B Two,\n", encoding="utf-8"
    )
    ok(cli("client", "import", src, as_=USER1))
    out = tmp_path / "out.csv"
    ok(cli("client", "export", out, as_=USER1))
    assert out.read_text().splitlines() == [
        "email,full_name,comment",
        "a@example.com,A One,x",
        "b@example.com,B Two,",
    ]
    assert ok(cli("client", "export", as_=USER1)).stdout == out.read_text()


def test_import_broken_rows_by_line(cli, users, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("email,full_name,comment\na@example.com,A,\nnot-an-email,B,\nc@example.com\n")
    result = fails(cli("client", "import", src, as_=USER1), "line 3: invalid email")
    assert "line 4: expected 3 fields, found 1" in result.stderr
    assert [r["email"] for r in as_json(cli("client", "list", "--json", as_=USER1))] == [
        "a@example.com"
    ]


def test_import_strict_imports_nothing(cli, users, tmp_path: Path, snapshot) -> None:
    src = tmp_path / "in.csv"
    src.write_text("email,full_name,comment\na@example.com,A,\nnot-an-email,B,\n")
    before = snapshot()
    fails(cli("client", "import", src, "--strict", as_=USER1), "line 3: invalid email")
    assert snapshot() == before


def test_import_not_utf8(cli, users, tmp_path: Path, snapshot) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes("email,full_name,comment\nz@example.com,Zoë,\n".encode("latin-1"))
    before = snapshot()
    fails(cli("client", "import", src, as_=USER1), "the file is not UTF-8")
    assert snapshot() == before


def test_list_on_a_terminal_is_a_table(cli, users) -> None:
    """A real pseudo-terminal: Rich draws the table (it used to get an argument it refuses)."""
    import os
    import pty
    import select
    import subprocess
    import sys

    ok(cli("client", "add", "ann@example.com", "--name", "Ann Lee", as_=USER1))
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailctl", "--as", USER1, "client", "list"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "COLUMNS": "120"},
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=60) == 0, b"".join(chunks).decode(errors="replace")
    text = b"".join(chunks).decode(errors="replace")
    assert "Traceback" not in text
    assert "ann@example.com" in text and "Ann Lee" in text
    assert "─" in text or "━" in text  # drawn as a table, not the piped tab-separated lines

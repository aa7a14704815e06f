"""`init`, `stats`, `config` and `db`."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import as_json, fails, ok

PW = "correct horse battery\n"


def test_init_creates_database_and_admin(bare_cli) -> None:
    result = ok(bare_cli("init", "--admin", "Root@Example.com", "--password-stdin", input=PW))
    assert "created admin root@example.com" in result.stderr
    assert [u["email"] for u in as_json(bare_cli("user", "list", "--json"))] == ["root@example.com"]
    again = ok(bare_cli("init"))
    assert "(up to date)" in again.stderr


def test_init_without_admin_on_new_database(bare_cli) -> None:
    fails(bare_cli("init"), "needs its first admin")


def test_second_init_with_admin(cli, snapshot) -> None:
    before = snapshot()
    fails(
        cli("init", "--admin", "other@example.com", "--password-stdin", input=PW),
        "already initialised",
    )
    assert snapshot() == before


def test_unmigrated_database(bare_cli, db_url) -> None:
    if db_url.startswith("sqlite"):  # an empty file, as sqlite3 or an interrupted init leaves
        import sqlite3

        path = Path(db_url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(path).close()
    for argv in (("client", "list"), ("user", "list", "--json"), ("stats",)):
        fails(bare_cli(*argv), "the database is not initialised: run `mailctl init` first")


def test_stats_empty(cli) -> None:
    assert as_json(cli("stats", "--json")) == {
        "total_mailings": 0,
        "active_mailings": 0,
        "unique_clients": 0,
    }
    assert "total mailings" in ok(cli("stats")).stdout


def test_config_show(cli, monkeypatch) -> None:
    monkeypatch.setenv("MAILCTL_SMTP_PORT", "2525")
    monkeypatch.setenv("MAILCTL_SMTP_PASSWORD", "hunter2hunter2")
    rows = {r["key"]: r for r in as_json(cli("config", "show", "--json"))}
    assert rows["smtp.port"]["value"] == 2525
    assert rows["smtp.port"]["source"] == "env MAILCTL_SMTP_PORT"
    assert rows["smtp.port"]["env"] == "MAILCTL_SMTP_PORT"
    assert rows["scheduler.timezone"]["value"] == "Europe/Berlin"
    result = ok(cli("config", "show"))
    assert "hunter2hunter2" not in result.stdout
    assert result.stdout.splitlines()[0] == "key\tvalue\tsource"
    assert "config file:" in result.stderr


def test_config_show_lists_every_server(bare_cli, tmp_path: Path) -> None:
    config = tmp_path / "servers.toml"
    config.write_text(
        '[smtp]\npassword = "hunter2hunter2"\n\n'
        '[[smtp.servers]]\nhost = "one.example.com"\n\n'
        '[[smtp.servers]]\nhost = "two.example.com"\nport = 2525\n'
    )
    rows = {
        r["key"]: r for r in as_json(bare_cli("--config", str(config), "config", "show", "--json"))
    }
    assert rows["smtp.servers[1].host"]["value"] == "two.example.com"
    assert rows["smtp.servers[1].port"] == {
        "key": "smtp.servers[1].port",
        "value": 2525,
        "source": f"file {config}",
        "env": None,
    }
    assert rows["smtp.servers[0].port"]["source"] == "[smtp] default"
    text = ok(bare_cli("--config", str(config), "config", "show")).stdout
    assert "smtp.servers[0].host\tone.example.com\tfile " in text
    assert "hunter2hunter2" not in text


def test_missing_config_file(bare_cli, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MAILCTL_CONFIG", str(tmp_path / "nowhere.toml"))
    fails(bare_cli("config", "show"), "config file not found")
    fails(bare_cli("client", "list"), "config file not found")
    fails(
        bare_cli("--config", str(tmp_path / "also-nowhere.toml"), "stats"), "config file not found"
    )


def test_bad_config_file(bare_cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[smtp\nport = 1\n")
    fails(bare_cli("--config", str(bad), "config", "show"), "is not valid TOML")


def test_db_commands(cli) -> None:
    head = ok(cli("db", "current")).stdout.strip()
    assert head != "base"
    assert "up to date" in cli("db", "current").stderr
    history = ok(cli("db", "history")).stdout
    assert f"-> {head}" in history and "base -> " in history
    ok(cli("db", "downgrade", "base"))
    assert ok(cli("db", "current")).stdout.strip() == "base"
    fails(cli("client", "list"), "not initialised")
    ok(cli("db", "upgrade"))
    assert ok(cli("db", "current")).stdout.strip() == head

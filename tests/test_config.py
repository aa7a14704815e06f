"""Settings: typed sections from one SCHEMA, lists of servers, sources, the generated key."""

from __future__ import annotations

import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest


def _key(data_dir: str) -> str:
    from mailctl.config import load_settings

    env = {"MAILCTL_GENERAL_DATA_DIR": data_dir, "MAILCTL_CONFIG": "/dev/null"}
    return load_settings(env=env).web_secret_key()


def test_processes_starting_together_share_one_non_empty_key(tmp_path: Path) -> None:
    for attempt in range(5):
        data_dir = str(tmp_path / f"d{attempt}")
        with ProcessPoolExecutor(4) as pool:
            keys = list(pool.map(_key, [data_dir] * 8))
        assert len(set(keys)) == 1 and len(keys[0]) > 40
        assert not [p for p in Path(data_dir).iterdir() if p.name.startswith(".secret_key")]


def test_the_example_file_documents_every_setting() -> None:
    """mailctl.toml.example is generated from the settings table; regenerate it when they differ
    (python -c "from mailctl.config import example_toml; print(example_toml(), end='')")."""
    from mailctl.config import SCHEMA, env_name, example_toml

    text = (Path(__file__).parent.parent / "mailctl.toml.example").read_text()
    assert text == example_toml()
    for section, keys in SCHEMA.items():
        for key in keys:
            assert env_name(section, key) in text


def test_environment_overrides_a_file_value(tmp_path: Path) -> None:
    from mailctl.config import load_settings

    config = tmp_path / "mailctl.toml"
    config.write_text('[smtp]\nport = 2525\nhost = "mail.example.com"\n')
    settings = load_settings(config, env={"MAILCTL_SMTP_PORT": "587"})
    server = settings.smtp.servers[0]
    assert server.port == 587
    assert server.host == "mail.example.com"
    sources = {row.key: row.source for row in settings.effective()}
    assert sources["smtp.port"] == "env MAILCTL_SMTP_PORT"
    assert sources["smtp.host"].startswith("file ")


def _servers_file(tmp_path: Path) -> Path:
    config = tmp_path / "servers.toml"
    config.write_text(
        "[smtp]\n"
        'host = "shared.example.com"\n'
        "timeout = 12.5\n"
        "\n"
        "[[smtp.servers]]\n"
        'host = "one.example.com"\n'
        "port = 587\n"
        'security = "starttls"\n'
        "\n"
        "[[smtp.servers]]\n"
        "port = 2525\n"
        "timeout = 3\n"
    )
    return config


def test_a_lone_smtp_section_is_the_one_server(tmp_path: Path) -> None:
    from mailctl.config import SmtpServer, load_settings

    config = tmp_path / "mailctl.toml"
    config.write_text('[smtp]\nhost = "mail.example.com"\nport = 465\nsecurity = "ssl"\n')
    (server,) = load_settings(config, env={"MAILCTL_SMTP_USERNAME": "ann"}).smtp.servers
    assert isinstance(server, SmtpServer)
    assert (server.host, server.port, server.security, server.username) == (
        "mail.example.com",
        465,
        "ssl",
        "ann",
    )
    assert server.timeout == 30.0 and server.name == "smtp"


def test_listed_servers_take_what_they_leave_out_from_smtp(tmp_path: Path) -> None:
    from mailctl.config import load_settings

    settings = load_settings(_servers_file(tmp_path), env={"MAILCTL_SMTP_USERNAME": "relay"})
    first, second = settings.smtp.servers
    assert (first.host, first.port, first.security, first.timeout) == (
        "one.example.com",
        587,
        "starttls",
        12.5,
    )
    assert (second.host, second.port, second.security, second.timeout) == (
        "shared.example.com",
        2525,
        "none",
        3.0,
    )
    # The environment sets [smtp], which every server inherits unless it sets its own.
    assert first.username == second.username == "relay"
    assert (first.name, second.name) == ("smtp.servers[0]", "smtp.servers[1]")


def test_the_transport_sends_through_the_first_server(tmp_path: Path) -> None:
    from mailctl.config import load_settings
    from mailctl.sending.transport import SmtpTransport, make_transport

    env = {"MAILCTL_DELIVERY_TRANSPORT": "smtp", "MAILCTL_DELIVERY_ATTEMPT_DEADLINE_SECONDS": "7"}
    transport = make_transport(load_settings(_servers_file(tmp_path), env=env))
    try:
        assert isinstance(transport, SmtpTransport)
        assert (transport.host, transport.port, transport.timeout, transport.deadline) == (
            "one.example.com",
            587,
            12.5,
            7.0,
        )
    finally:
        transport.close()


def test_effective_settings_name_every_server_key_and_its_source(tmp_path: Path) -> None:
    from mailctl.config import SCHEMA, load_settings

    config = _servers_file(tmp_path)
    env = {"MAILCTL_SMTP_PASSWORD": "s3cret-s3cret"}
    rows = {row.key: row for row in load_settings(config, env=env).effective()}
    for index in (0, 1):
        for key in SCHEMA["smtp"]:
            assert f"smtp.servers[{index}].{key}" in rows
    assert rows["smtp.servers[0].host"].value == "one.example.com"
    assert rows["smtp.servers[0].host"].source == f"file {config}"
    assert rows["smtp.servers[0].host"].env is None
    assert rows["smtp.servers[1].host"].value == "shared.example.com"
    assert rows["smtp.servers[1].host"].source == f"[smtp] file {config}"
    assert rows["smtp.servers[1].local_hostname"].source == "[smtp] default"
    # An inherited secret is still masked.
    assert rows["smtp.servers[1].password"].value == "****"
    assert rows["smtp.servers[1].password"].source == "[smtp] env MAILCTL_SMTP_PASSWORD"
    assert rows["smtp.password"].env == "MAILCTL_SMTP_PASSWORD"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[smtp.servers]]\nhots = "x"\n', "unknown key 'hots' in smtp.servers[0]"),
        ('[[smtp.servers]]\nport = "many"\n', "smtp.servers[0].port must be int, got 'many'"),
        ('[[smtp.servers]]\nsecurity = "tls"\n', "smtp.servers[0].security must be one of"),
        ('[smtp]\nservers = "a.example.com"\n', "smtp.servers must be [[smtp.servers]] tables"),
        ("[smtp]\nservers = []\n", "smtp.servers is empty"),
        ('[[delivery.servers]]\nhost = "x"\n', "unknown key 'servers' in [delivery]"),
    ],
)
def test_bad_server_tables_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    from mailctl.config import load_settings
    from mailctl.errors import ConfigError

    config = tmp_path / "mailctl.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(config, env={})


def test_sections_are_frozen_and_typed(settings) -> None:
    from dataclasses import FrozenInstanceError

    assert isinstance(settings.delivery.batch_size, int)
    assert isinstance(settings.delivery.attempt_deadline_seconds, float)
    assert isinstance(settings.web.secure_cookies, bool)
    with pytest.raises(FrozenInstanceError):
        settings.delivery.batch_size = 1  # type: ignore[misc]
    assert not hasattr(settings, "get") and not hasattr(settings, "values")


def test_flags_go_on_top_and_keep_their_source(settings) -> None:
    changed = settings.with_overrides("smtp", port=2526)
    assert changed.smtp.servers[0].port == 2526 and settings.smtp.servers[0].port == 25
    rows = {row.key: row for row in changed.effective()}
    assert (rows["smtp.port"].value, rows["smtp.port"].source) == (2526, "flag")


def test_a_key_without_a_field_is_refused_on_import(monkeypatch) -> None:
    from mailctl.config import SCHEMA, Key, check_sections

    smtp = dict(SCHEMA["smtp"])
    monkeypatch.setitem(SCHEMA, "smtp", {**smtp, "helo_name": Key(str, "", "a key with no field")})
    with pytest.raises(TypeError, match="helo_name"):
        check_sections()
    monkeypatch.setitem(SCHEMA, "smtp", {**smtp, "port": Key(str, "25", "port as text")})
    with pytest.raises(TypeError, match="SmtpServer.port is int, SCHEMA says str"):
        check_sections()


def test_a_clock_is_never_made_up() -> None:
    from mailctl.schedule import Clock
    from mailctl.services import delivery, mailings

    with pytest.raises(TypeError):
        Clock(tz="UTC")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="clock"):
        mailings.add_mailing(session=None, actor=None, message_id=1, start=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock"):
        delivery.run_pass(engine=None, settings=None, worker="w")  # type: ignore[call-arg,arg-type]

"""`mailctl crontab add|show|remove` against a fake `crontab` command on PATH."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from mailctl.cli.crontab_cmd import TAG, check_schedule
from mailctl.errors import Invalid

OTHER = [
    "# m h  dom mon dow   command",
    "MAILTO=ops@example.com",
    "*/5 * * * * /usr/bin/backup --quiet  # keep me",
    "",
    "0 3 * * 0 echo '100%' > /dev/null",
]


def ours(table: Path) -> list[str]:
    return [line for line in table.read_text().splitlines() if TAG in line]


def test_no_crontab_yet_is_an_empty_one_and_add_twice_leaves_one_line(
    bare_cli, fake_crontab: Path, mailctl_env: Path
) -> None:  # type: ignore[no-untyped-def]
    assert not fake_crontab.exists()
    first = bare_cli("crontab", "add")
    assert first.exit_code == 0, first.output
    assert "added" in first.stderr
    second = bare_cli("crontab", "add")
    assert second.exit_code == 0, second.output
    assert "already installed" in second.stderr
    (line,) = ours(fake_crontab)
    assert fake_crontab.read_text().endswith("\n")  # cron ignores an unterminated last line
    schedule, command = line[: len("* * * * *")], line[len("* * * * * ") :]
    assert schedule == "* * * * *"
    config = Path(shlex.split(command)[4])
    assert shlex.split(command)[:6] == [
        sys.executable,
        "-m",
        "mailctl",
        "--config",
        str(config),
        "run-due",
    ]
    assert config.samefile(mailctl_env.parent / "mailctl.toml")
    assert f">> {mailctl_env / 'run-due.log'} 2>&1" in command
    assert line.endswith(f"{TAG} {config}")
    assert first.stdout.strip() == line
    assert mailctl_env.is_dir()  # the log's folder exists for cron to append to


def test_a_changed_schedule_replaces_the_line_in_place(
    bare_cli, fake_crontab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    fake_crontab.write_text("\n".join(OTHER) + "\n")
    assert bare_cli("crontab", "add").exit_code == 0
    fake_crontab.write_text(fake_crontab.read_text() + "@reboot /usr/bin/true\n")
    monkeypatch.setenv("MAILCTL_SCHEDULER_CRON", "*/5 * * * *")
    result = bare_cli("crontab", "add")
    assert result.exit_code == 0, result.output
    assert "replaced" in result.stderr
    lines = fake_crontab.read_text().splitlines()
    (line,) = ours(fake_crontab)
    assert line.startswith("*/5 * * * * ")
    assert lines == [*OTHER, line, "@reboot /usr/bin/true"]
    assert bare_cli("crontab", "add", "--schedule", "@hourly").exit_code == 0
    assert ours(fake_crontab)[0].startswith("@hourly ")


def test_show_prints_the_line(bare_cli, fake_crontab: Path) -> None:  # type: ignore[no-untyped-def]
    missing = bare_cli("crontab", "show")
    assert missing.exit_code == 1 and "no mailctl run-due line" in missing.stderr
    added = bare_cli("crontab", "add")
    shown = bare_cli("crontab", "show")
    assert shown.exit_code == 0
    assert shown.stdout.strip() == added.stdout.strip() == ours(fake_crontab)[0]


def test_remove_leaves_other_lines_untouched(bare_cli, fake_crontab: Path) -> None:  # type: ignore[no-untyped-def]
    original = "\n".join(OTHER) + "\n"
    fake_crontab.write_text(original)
    assert bare_cli("crontab", "add").exit_code == 0
    assert len(fake_crontab.read_text().splitlines()) == len(OTHER) + 1
    removed = bare_cli("crontab", "remove")
    assert removed.exit_code == 0 and "removed" in removed.stderr
    assert fake_crontab.read_text() == original
    again = bare_cli("crontab", "remove")
    assert again.exit_code == 0 and "no mailctl run-due line" in again.stderr
    assert fake_crontab.read_text() == original


def test_lines_of_other_configs_are_not_ours(bare_cli, fake_crontab: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    other = f"* * * * * mailctl --config /srv/b.toml run-due {TAG} /srv/b.toml"
    commented = f"# * * * * * old {TAG} {tmp_path / 'mailctl.toml'}"
    fake_crontab.write_text(f"{other}\n{commented}\n")
    assert bare_cli("crontab", "add").exit_code == 0
    assert bare_cli("crontab", "remove").exit_code == 0
    assert fake_crontab.read_text() == f"{other}\n{commented}\n"


def test_percent_signs_are_escaped_for_cron(bare_cli, fake_crontab: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "100%.toml"
    config.write_text("")
    result = bare_cli("--config", str(config), "crontab", "add")
    assert result.exit_code == 0, result.output
    (line,) = ours(fake_crontab)
    command = line.split(TAG)[0]
    assert "100\\%.toml" in command and "100%.toml" not in command.replace("\\%", "")


def test_a_failing_crontab_command_is_one_line_error(
    bare_cli, fake_crontab: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "broken"
    broken.mkdir()
    script = broken / "crontab"
    script.write_text("#!/bin/sh\necho 'crontab: cannot open spool' >&2\nexit 1\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(broken))
    result = bare_cli("crontab", "add")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: crontab -l failed: crontab: cannot open spool"
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    missing = bare_cli("crontab", "show")
    assert missing.exit_code == 1 and "crontab command was not found" in missing.stderr


@pytest.mark.parametrize("good", ["* * * * *", "*/5 1-3 * jan mon-fri", "@hourly", " 0  3 * * * "])
def test_schedule_check_accepts_cron_syntax(good: str) -> None:
    assert check_schedule(good)


@pytest.mark.parametrize("bad", ["", "* * * *", "* * * * * *", "@often", "* * * * ; rm -rf /"])
def test_schedule_check_refuses_anything_else(bad: str) -> None:
    with pytest.raises(Invalid):
        check_schedule(bad)

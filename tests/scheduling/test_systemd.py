"""The units in systemd/: the settings operators rely on, and `systemd-analyze verify`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
NAMES = [
    "mailctl-daemon.service",
    "mailctl-web.service",
    "mailctl-run-due.service",
    "mailctl-run-due.timer",
]
BINARY = "/usr/local/bin/mailctl"
# What verify may say about the machine rather than the units: the binary or the user are
# only there once mailctl is installed as the README describes.
ENVIRONMENTAL = [
    re.compile(rf"Command {re.escape(BINARY)} is not executable"),
    re.compile(r"[Uu]ser.*mailctl.*(not exist|not found|unknown)"),
    re.compile(r"[Gg]roup.*mailctl.*(not exist|not found|unknown)"),
]


def directives(name: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values (keys like Environment= may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_daemon_unit_is_hardened_and_restarts_on_failure() -> None:
    service = directives("mailctl-daemon.service")["Service"]
    expected = {
        "ExecStart": f"{BINARY} daemon",
        "Restart": "on-failure",
        "User": "mailctl",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ReadWritePaths": "/var/lib/mailctl",
        "PrivateTmp": "yes",
        "KillSignal": "SIGTERM",
    }
    for key, value in expected.items():
        assert service.get(key) == [value], key
    # A stop waits for the message in flight: systemd must wait longer than an attempt may last.
    from mailctl.config import SCHEMA

    deadline = SCHEMA["delivery"]["attempt_deadline_seconds"].default
    assert int(service["TimeoutStopSec"][0]) > deadline + 10
    assert "MAILCTL_CONFIG=/etc/mailctl/mailctl.toml" in service["Environment"]
    assert directives("mailctl-daemon.service")["Install"]["WantedBy"] == ["multi-user.target"]


def test_web_and_run_due_units() -> None:
    web = directives("mailctl-web.service")["Service"]
    assert web["ExecStart"] == [f"{BINARY} web"]
    assert web["User"] == ["mailctl"] and web["ProtectSystem"] == ["strict"]
    run_due = directives("mailctl-run-due.service")["Service"]
    assert run_due["Type"] == ["oneshot"]
    assert run_due["ExecStart"] == [f"{BINARY} run-due"]
    assert "MAILCTL_CONFIG=/etc/mailctl/mailctl.toml" in run_due["Environment"]
    timer = directives("mailctl-run-due.timer")["Timer"]
    assert timer["OnCalendar"] == ["minutely"] and timer["Persistent"] == ["true"]
    assert timer["Unit"] == ["mailctl-run-due.service"]


def _verify(folder: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze is not installed")
    return subprocess.run(
        [exe, "verify", *(str(folder / n) for n in NAMES)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
    )


def test_systemd_analyze_verify_is_clean_once_mailctl_is_installed(tmp_path: Path) -> None:
    """With ExecStart pointing at an executable that exists, verify has nothing to say."""
    mailctl = shutil.which("mailctl")
    if mailctl is None:
        mailctl = str(tmp_path / "mailctl")
        Path(mailctl).write_text("#!/bin/sh\n")
        Path(mailctl).chmod(0o755)
    for name in NAMES:
        (tmp_path / name).write_text((UNITS / name).read_text().replace(BINARY, mailctl))
    result = _verify(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (result.stdout + result.stderr).strip() == ""


def test_systemd_analyze_verify_on_the_shipped_units(tmp_path: Path) -> None:
    """As shipped, only messages about this machine (no mailctl installed there) may appear."""
    result = _verify(UNITS)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    unexpected = [line for line in lines if not any(p.search(line) for p in ENVIRONMENTAL)]
    assert unexpected == []
    if not lines:
        assert result.returncode == 0

"""`mailctl crontab add|show|remove`: one tagged crontab line that runs `mailctl run-due`.

Like django-crontab: the line ends in a tag naming the config it belongs to, so `add` can
replace it and `remove` can find it, and every other line of the user's crontab is kept
byte for byte. The table is read with `crontab -l` and written back with `crontab -`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from typing import Annotated

import typer

from mailctl.cli.context import app_context
from mailctl.cli.output import note
from mailctl.config import Settings
from mailctl.errors import Invalid, MailctlError, NotFound

app = typer.Typer(no_args_is_help=True, add_completion=False)

TAG = "# mailctl:run-due"
_NICKNAMES = {"@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
              "@hourly"}  # fmt: skip
_FIELD = re.compile(r"^[0-9A-Za-z*/,\-]+$")
# cron starts with an almost empty environment.
_ENV_WARNING = (
    "these MAILCTL_* variables are set here but cron will not see them: {names}; "
    "put those settings in the config file"
)


class CrontabError(MailctlError):
    pass


def check_schedule(schedule: str) -> str:
    schedule = " ".join(schedule.split())
    if schedule.lower() in _NICKNAMES:
        return schedule.lower()
    fields = schedule.split(" ")
    if len(fields) != 5 or not all(_FIELD.match(f) for f in fields):
        raise Invalid(
            f"scheduler.cron must be five cron fields or a nickname like @hourly, got {schedule!r}"
        )
    return schedule


def config_ident(settings: Settings) -> str:
    path = settings.config_path
    return str(path.expanduser().resolve()) if path is not None else "default"


def tag_of(settings: Settings) -> str:
    return f"{TAG} {config_ident(settings)}"


def build_line(settings: Settings, schedule: str) -> str:
    parts = [sys.executable, "-m", "mailctl"]
    if settings.config_path is not None:
        parts += ["--config", config_ident(settings)]
    parts.append("run-due")
    log = settings.data_dir / "run-due.log"
    command = f"{shlex.join(parts)} >> {shlex.quote(str(log))} 2>&1"
    # cron turns an unescaped % into a newline.
    command = command.replace("%", "\\%")
    # The tag is a shell comment at the end of the command, so the line stays one line.
    return f"{check_schedule(schedule)} {command} {tag_of(settings)}"


def is_ours(line: str, tag: str) -> bool:
    return line.rstrip().endswith(tag) and not line.lstrip().startswith("#")


def merged(table: str, line: str, tag: str) -> str:
    """The table with our line in place of the old one (where it was), or appended."""
    out: list[str] = []
    placed = False
    for existing in table.splitlines():
        if is_ours(existing, tag):
            if not placed:
                out.append(line)
                placed = True
            continue  # duplicates left by hand editing collapse into one line
        out.append(existing)
    if not placed:
        out.append(line)
    return "\n".join(out) + "\n"


def without(table: str, tag: str) -> str:
    kept = [line for line in table.splitlines() if not is_ours(line, tag)]
    return "\n".join(kept) + "\n" if kept else ""


def _crontab() -> str:
    exe = shutil.which("crontab")
    if exe is None:
        raise CrontabError("the crontab command was not found; install cron (apt install cron)")
    return exe


def read_table() -> str:
    result = subprocess.run(
        [_crontab(), "-l"], capture_output=True, text=True, timeout=30, check=False
    )
    if result.returncode != 0:
        if "no crontab for" in result.stderr.lower():
            return ""
        raise CrontabError(f"crontab -l failed: {result.stderr.strip() or result.returncode}")
    return result.stdout


def write_table(table: str) -> None:
    result = subprocess.run(
        [_crontab(), "-"], input=table, capture_output=True, text=True, timeout=30, check=False
    )
    if result.returncode != 0:
        raise CrontabError(f"crontab - failed: {result.stderr.strip() or result.returncode}")


def _warn_env() -> None:
    names = sorted(
        n for n in os.environ if n.startswith("MAILCTL_") and n not in ("MAILCTL_CONFIG",)
    )
    if names:
        note(_ENV_WARNING.format(names=", ".join(names)))


@app.command("add")
def add(
    ctx: typer.Context,
    schedule: Annotated[
        str | None,
        typer.Option("--schedule", help="Cron schedule (default: scheduler.cron, every minute)."),
    ] = None,
) -> None:
    """Install the crontab line running `mailctl run-due` with this config; safe to repeat.

    A changed schedule replaces the line; other lines of the crontab are never touched.

    Example: mailctl --config /etc/mailctl/mailctl.toml crontab add
    """
    settings = app_context(ctx).settings
    line = build_line(settings, schedule or settings.scheduler.cron)
    tag = tag_of(settings)
    table = read_table()
    current = [existing for existing in table.splitlines() if is_ours(existing, tag)]
    if current == [line]:
        note("the crontab line is already installed")
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)  # for run-due.log
        write_table(merged(table, line, tag))
        note("replaced the crontab line" if current else "added the crontab line")
    _warn_env()
    typer.echo(line)


@app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the crontab line installed for this config (exit code 1 when there is none).

    Example: mailctl crontab show
    """
    tag = tag_of(app_context(ctx).settings)
    lines = [line for line in read_table().splitlines() if is_ours(line, tag)]
    if not lines:
        raise NotFound("no mailctl run-due line in the crontab for this config")
    typer.echo("\n".join(lines))


@app.command("remove")
def remove(ctx: typer.Context) -> None:
    """Remove the crontab line of this config; other lines stay as they are.

    Example: mailctl crontab remove
    """
    tag = tag_of(app_context(ctx).settings)
    table = read_table()
    if not any(is_ours(line, tag) for line in table.splitlines()):
        note("no mailctl run-due line in the crontab for this config")
        return
    write_table(without(table, tag))
    note("removed the crontab line")

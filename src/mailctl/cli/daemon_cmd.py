"""`mailctl daemon` (the scheduler) and `mailctl status` (what it is doing)."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mailctl.cli.context import app_context
from mailctl.cli.output import JsonOpt
from mailctl.errors import NoDatabase
from mailctl.timeutil import fmt

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# journald reads a leading <N> as the syslog priority of the line.
_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(super().format(record).splitlines())
        return f"<{_PRIORITY.get(record.levelno, 6)}>{line}"


def setup_logging(level: str) -> None:
    """One line per event on stdout; journald adds its own timestamps, a terminal gets ours."""
    handler = logging.StreamHandler(sys.stdout)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # APScheduler logs every job run and Alembic every schema check at INFO; only their
    # warnings interest an operator.
    for name in ("apscheduler", "alembic"):
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)


def _refuse_a_missing_file(engine: Engine) -> None:
    """NoDatabase for a SQLite file that is not there: only `mailctl init` makes one, so
    waiting for it would only look like a running scheduler (systemd would show it active)."""
    try:
        engine.connect().close()
    except NoDatabase:
        raise
    except Exception:  # noqa: S110 - down or locked: the daemon's passes say so, and retry
        pass


def daemon(
    ctx: typer.Context,
    tick: Annotated[
        int | None,
        typer.Option(
            "--tick", min=1, help="Seconds between checks (default scheduler.tick_seconds)."
        ),
    ] = None,
) -> None:
    """Run the scheduler: send due runs and retries by themselves until stopped.

    Wakes at the next due time or every scheduler.tick_seconds. SIGTERM or Ctrl-C finishes
    the message in flight, releases claims and exits 0. Safe beside cron and other daemons.
    A database server that is down is waited for; a SQLite file that is not there is refused
    at once (`mailctl init` makes it).

    Example: mailctl daemon
    """
    from mailctl.scheduling.daemon import Daemon

    app_ctx = app_context(ctx)
    settings = app_ctx.settings
    if tick is not None:
        settings = settings.with_overrides("scheduler", tick_seconds=tick)
    setup_logging(settings.general.log_level)
    # The raw engine: a database that is down or not initialised yet is waited for, not fatal;
    # a SQLite file that is not there is refused at once, as the panel does.
    engine = app_ctx.raw_engine
    _refuse_a_missing_file(engine)
    code = Daemon(engine, settings).run()
    raise typer.Exit(code)


def _ago(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Show the daemons' heartbeats, the next due runs and the recipients still waiting.

    A daemon whose heartbeat is older than three ticks is marked stale (died or hangs).

    Example: mailctl status --json
    """
    from mailctl.models.delivery import WAITING
    from mailctl.services.status import quota_note
    from mailctl.services.status import status as read_status

    app_ctx = app_context(ctx)
    tz = app_ctx.tz
    report = read_status(app_ctx.engine, tick_seconds=app_ctx.settings.scheduler.tick_seconds)
    mailbox = _bounce_mailbox(app_ctx.engine, app_ctx.settings)
    if as_json:
        typer.echo(json.dumps(_jsonable(report.as_dict() | {"bounce_mailbox": mailbox}), indent=2))
        return
    now = report.now
    out: list[str] = ["daemons:"]
    for w in report.workers:
        flag = "  STALE: no heartbeat for three ticks" if w["stale"] else ""
        out.append(
            f"  {w['id']}  pid {w['pid']}  {w['state']}  last seen {fmt(w['seen_at'], tz)} "
            f"({_ago((now - w['seen_at']).total_seconds())}){flag}"
        )
    if not report.workers:
        out.append("  none has recorded a heartbeat (cron's run-due does not record one)")
    out.append("next runs:")
    for r in report.next_runs:
        flag = "  overdue: is a daemon or cron running?" if r["overdue"] else ""
        out.append(f"  mailing {r['mailing_id']}  {fmt(r['next_run_at'], tz)}  {r['every']}{flag}")
    if not report.next_runs:
        out.append("  none scheduled")
    out.append("waiting recipients:")
    for m in report.waiting:
        counts = ", ".join(f"{s} {m[s]}" for s in WAITING if m[s])
        retry = f" (next retry {fmt(m['next_retry_at'], tz)})" if m["next_retry_at"] else ""
        out.append(f"  mailing {m['mailing_id']}: {counts}{retry}")
        if m["quota_server"]:
            out.append(f"    {quota_note(m['quota_server'], m['quota_until'], tz)}")
        if m["last_error"]:
            out.append(f"    last pass: {m['last_error']}")
    totals = report.totals
    out.append("  total: " + ", ".join(f"{s} {totals[s]}" for s in WAITING))
    if totals["unknown"]:
        out.append(
            "  unknown: the server took the message and did not answer, or a sender stopped"
            " mid-message; check, then `mailctl mailing retry ID --unknown`"
        )
    out.append("bounce mailbox:")
    if mailbox is None:
        out.append("  none configured ([bounces] host); `mailctl bounces import` reads files")
    else:
        out.append(f"  {mailbox['name']}  every {mailbox['fetch_every_seconds']}s")
        if mailbox["last_fetch_at"] is None:
            out.append("  not fetched yet")
        else:
            at = mailbox["last_fetch_at"]
            when = f"{fmt(at, tz)} ({_ago((now - at).total_seconds())})"
            if mailbox["last_error"]:
                out.append(f"  last fetch {when} FAILED: {mailbox['last_error']}")
            else:
                out.append(f"  last fetch {when}: {mailbox['last_summary']}")
            out.append(f"  messages processed in all: {mailbox['processed_total']}")
    typer.echo("\n".join(out))


def _bounce_mailbox(engine: Any, settings: Any) -> dict[str, Any] | None:
    """The configured bounce mailbox and its last fetch, for the status (None: no mailbox)."""
    from mailctl.services.bounce_mailbox import mailbox_name, mailbox_state

    if not settings.bounces.host:
        return None
    state = mailbox_state(engine, settings)
    return {
        "name": mailbox_name(settings.bounces),
        "fetch_every_seconds": settings.bounces.fetch_every_seconds,
        "last_fetch_at": state.last_fetch_at if state else None,
        "last_ok_at": state.last_ok_at if state else None,
        "last_error": state.last_error if state else None,
        "last_summary": state.last_summary if state else "",
        "processed_total": state.processed_total if state else 0,
    }

"""Sending from the shell: `mailing send|logs|report|retry` and `run-due`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mailctl.cli.context import AppContext, app_context
from mailctl.cli.output import JsonOpt, emit_one, emit_rows, note, records
from mailctl.errors import Invalid

if TYPE_CHECKING:
    from mailctl.sending.engine import Summary


@contextmanager
def _progress(total: int) -> Iterator[Callable[[str], None] | None]:
    """A Rich progress bar on a terminal; nothing at all in scripts and pipes."""
    if not sys.stderr.isatty() or total == 0:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    # On stderr, with the other notes: stdout stays data (`--json`, ids) even on a terminal.
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("sending", total=total)
        yield lambda _status: bar.advance(task)


def _summary_line(summary: Summary) -> str:
    line = (
        f"sent {summary.sent}, deferred {summary.deferred}, failed {summary.failed}, "
        f"unknown {summary.unknown}, skipped {summary.skipped}"
    )
    return line + (f"; {summary.stopped}" if summary.stopped else "")


def send_now(app_ctx: AppContext, mailing_id: int, *, bring: bool = True) -> Summary:
    """Send the mailing's due run (brought forward first unless `bring` is false: a mailing
    that is due already may have had its run started by a daemon meanwhile, and then this
    pass helps send it instead of failing)."""
    from mailctl.scheduling.passes import run_pass
    from mailctl.sending.engine import new_worker_id
    from mailctl.services import reports
    from mailctl.services.runs import bring_forward, start_due_runs

    if bring:
        with app_ctx.session() as session:
            bring_forward(
                session=session,
                actor=app_ctx.actor(session),
                mailing_id=mailing_id,
                clock=app_ctx.clock,
            )
    started = start_due_runs(app_ctx.engine, clock=app_ctx.clock, mailing_id=mailing_id)
    with app_ctx.session(readonly=True) as session:
        total = reports.open_count(session=session, mailing_id=mailing_id)
    with _progress(total) as progress:
        summary = run_pass(
            app_ctx.engine,
            app_ctx.settings,
            worker=new_worker_id("cli"),
            mailing_id=mailing_id,
            progress=progress,
        )
    summary.runs_started += len(started)
    return summary


def after_create(ctx: typer.Context, mailing_id: int, *, no_send: bool) -> None:
    """A new mailing whose start has come begins sending at once (SPEC: no further action)."""
    from mailctl.services.mailings import get_mailing, is_due

    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        mailing = get_mailing(session=session, actor=app_ctx.actor(session), mailing_id=mailing_id)
    if no_send or not is_due(mailing):
        note(f"stored mailing {mailing_id}; it starts by itself at its start time")
        return
    summary = send_now(app_ctx, mailing_id, bring=False)
    note(f"mailing {mailing_id}: {_summary_line(summary)}")


def send(
    ctx: typer.Context,
    mailing_id: Annotated[int, typer.Argument(help="Mailing id.")],
    as_json: JsonOpt = False,
) -> None:
    """Send a mailing's due run now; a run not yet due is brought forward.

    Exit code 0 when the pass completed, even if some recipients failed; 1 when it paused
    because the mail server refused mailctl's login (nothing can go out until that is fixed).

    Example: mailctl mailing send 4
    """
    summary = send_now(app_context(ctx), mailing_id)
    if as_json:
        typer.echo(json.dumps(summary.as_dict()))
    note(f"mailing {mailing_id}: {_summary_line(summary)}")
    if summary.paused:
        raise typer.Exit(1)


def logs(
    ctx: typer.Context,
    mailing_id: Annotated[int, typer.Argument(help="Mailing id.")],
    status: Annotated[
        str | None, typer.Option("--status", help="sent, deferred, failed, unknown or skipped.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many attempts, newest first.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Show a mailing's delivery attempts with the mail server's replies.

    Example: mailctl mailing logs 4 --status deferred --json
    """
    from mailctl.services import reports

    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        rows = reports.list_attempts(
            session=session,
            actor=app_ctx.actor(session),
            mailing_id=mailing_id,
            status=status,
            limit=limit,
        )
    fields = ("id", "attempted_at", "run_id", "email", "status", "smtp_code", "response")
    emit_rows(
        records(rows, fields), columns=fields[1:], as_json=as_json, tz=app_ctx.tz, title="Attempts"
    )


def report(
    ctx: typer.Context,
    mailing_id: Annotated[int, typer.Argument(help="Mailing id.")],
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Also export every attempt to this CSV file.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Summarise a mailing: recipients per state, success rate, last attempt and error.

    Example: mailctl mailing report 4 --csv attempts.csv
    """
    from mailctl.services import reports

    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        actor = app_ctx.actor(session)
        result = reports.mailing_report(session=session, actor=actor, mailing_id=mailing_id)
        text = (
            reports.attempts_csv(session=session, actor=actor, mailing_id=mailing_id)
            if csv_path
            else ""
        )
    if csv_path is not None:
        try:
            csv_path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise Invalid(f"cannot write {csv_path}: {exc.strerror}") from None
        note(f"wrote {text.count(chr(10)) - 1} attempts to {csv_path}")
    emit_one(result.as_dict(), as_json=as_json, tz=app_ctx.tz)


def retry(
    ctx: typer.Context,
    mailing_id: Annotated[int, typer.Argument(help="Mailing id.")],
    unknown: Annotated[
        bool,
        typer.Option("--unknown", help="Also resend rows whose fate is unknown (may duplicate)."),
    ] = False,
    no_send: Annotated[
        bool, typer.Option("--no-send", help="Only queue them for the next pass.")
    ] = False,
) -> None:
    """Retry deferred recipients now (and, with --unknown, those whose fate is unknown).

    Example: mailctl mailing retry 4 --unknown
    """
    from mailctl.services import reports

    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        count = reports.requeue(
            session=session, actor=app_ctx.actor(session), mailing_id=mailing_id, unknown=unknown
        )
    note(f"queued {count} recipients of mailing {mailing_id}")
    if count and not no_send:
        summary = send_now(app_ctx, mailing_id)
        note(f"mailing {mailing_id}: {_summary_line(summary)}")


def send_due(app_ctx: AppContext) -> Summary:
    from mailctl.scheduling.passes import run_pass
    from mailctl.sending.engine import new_worker_id

    return run_pass(app_ctx.engine, app_ctx.settings, worker=new_worker_id("cli"))


def run_due(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Run one pass: start due runs, send them and due retries, print a summary.

    Safe to run every minute from cron while a daemon also runs. Exit code 0 when the pass
    completed, even if recipients failed; 1 only when mailctl itself could not work.

    Example: * * * * * mailctl run-due >> /var/log/mailctl.log 2>&1
    """
    summary = send_due(app_context(ctx))
    if as_json:
        typer.echo(json.dumps(summary.as_dict()))
    else:
        typer.echo(f"runs started {summary.runs_started}; {_summary_line(summary)}")


def register(mailing_app: typer.Typer) -> None:
    """The sending half of `mailctl mailing` (`run-due` is a root command)."""
    mailing_app.command("send")(send)
    mailing_app.command("logs")(logs)
    mailing_app.command("report")(report)
    mailing_app.command("retry")(retry)

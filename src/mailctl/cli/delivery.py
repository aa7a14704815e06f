"""Sending from the shell: `mailing send|logs|report|retry` and `run-due`."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mailctl.cli.context import AppContext, app_context
from mailctl.cli.output import JsonOpt, emit_one, emit_rows, note, write_file
from mailctl.errors import Invalid

if TYPE_CHECKING:
    from mailctl.models import Mailing
    from mailctl.services.delivery import Summary

# The services load with the command that needs them: `mailing list` or `--help` pay for
# none of the sender.


class _Bar:
    """A Rich progress bar on a terminal (rate, time left, counts by outcome), shown once the
    pass knows how much it will send; nothing at all in scripts, pipes or with --quiet."""

    def __init__(self, *, quiet: bool = False) -> None:
        self._bar: Any = None
        self._task: Any = None
        self._quiet = quiet
        self._counts: dict[str, int] = {}
        self._began = 0.0

    def begin(self, total: int) -> None:
        if self._quiet or not sys.stderr.isatty() or total == 0:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("sending"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[counts]}"),
            # On stderr, with the other notes: stdout stays data (`--json`, ids) on a terminal.
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._bar.add_task("sending", total=total, rate="", counts="")
        self._began = time.monotonic()
        self._bar.start()

    def advance(self, status: str) -> None:
        if self._bar is None:
            return
        self._counts[status] = self._counts.get(status, 0) + 1
        done = sum(self._counts.values())
        elapsed = max(time.monotonic() - self._began, 1e-6)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self._counts.items()))
        self._bar.update(self._task, advance=1, rate=f"{done / elapsed:.0f} msg/s", counts=counts)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@contextmanager
def _progress(*, quiet: bool = False) -> Iterator[_Bar]:
    bar = _Bar(quiet=quiet)
    try:
        yield bar
    finally:
        bar.close()


def _summary_line(summary: Summary) -> str:
    return summary.counts_line() + (f"; {summary.stopped}" if summary.stopped else "")


def send_now(app_ctx: AppContext, mailing_id: int, *, quiet: bool = False) -> Summary:
    from mailctl.services import delivery

    with app_ctx.session(readonly=True) as session:
        actor = app_ctx.actor(session)
    with _progress(quiet=quiet) as bar:
        return delivery.send_now(
            engine=app_ctx.engine,
            settings=app_ctx.settings,
            clock=app_ctx.clock,
            actor=actor,
            mailing_id=mailing_id,
            worker=delivery.new_worker_id("cli"),
            progress=bar,
        )


def after_create(ctx: typer.Context, mailing: Mailing, *, no_send: bool) -> None:
    """A new mailing whose start has come begins sending at once, with no further action.

    Its due run is not brought forward again: a daemon may have started it meanwhile, and then
    this pass helps send it instead of failing."""
    from mailctl.services import delivery

    app_ctx = app_context(ctx)
    summary = None
    if not no_send:
        with _progress() as bar:
            summary = delivery.send_if_due(
                engine=app_ctx.engine,
                settings=app_ctx.settings,
                clock=app_ctx.clock,
                mailing=mailing,
                worker=delivery.new_worker_id("cli"),
                progress=bar,
            )
    if summary is None:
        note(f"stored mailing {mailing.id}; it starts by itself at its start time")
    else:
        note(f"mailing {mailing.id}: {_summary_line(summary)}")


def send(
    ctx: typer.Context,
    mailing_id: Annotated[int, typer.Argument(help="Mailing id.")],
    as_json: JsonOpt = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar on a terminal.")
    ] = False,
) -> None:
    """Send a mailing's due run now; a run not yet due is brought forward.

    Exit code 0 when the pass completed, even if some recipients failed; 1 when it paused
    because the mail server refused mailctl's login (nothing can go out until that is fixed).

    Example: mailctl mailing send 4
    """
    summary = send_now(app_context(ctx), mailing_id, quiet=quiet)
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
    limit: Annotated[
        int, typer.Option("--limit", help="How many attempts, newest first; 0 for every one.")
    ] = 100,
    as_json: JsonOpt = False,
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="Print JSON Lines: one attempt a line.")
    ] = False,
) -> None:
    """Show a mailing's delivery attempts with the mail server's replies.

    JSON, JSON Lines and the plain table of a pipe are written as the rows are read, so
    `--limit 0 --jsonl` exports a log of any size in flat memory.

    Example: mailctl mailing logs 4 --status deferred --json
    """
    from mailctl.services import reports

    if limit < 0:
        raise Invalid("--limit must be 0 (every attempt) or more")
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        rows = reports.iter_attempts(
            session=session,
            actor=app_ctx.actor(session),
            mailing_id=mailing_id,
            status=status,
            limit=limit or None,
        )
        fields = reports.ATTEMPT_COLUMNS
        emit_rows(
            ({f: getattr(row, f) for f in fields} for row in rows),
            columns=fields[1:],
            as_json=as_json,
            jsonl=jsonl,
            tz=app_ctx.tz,
            title="Attempts",
        )


def report(
    ctx: typer.Context,
    mailing_id: Annotated[int, typer.Argument(help="Mailing id.")],
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Also export every attempt to this CSV file.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Summarise a mailing: recipients per state, success rate, bounces and complaints (per
    run too), last attempt and error.

    Example: mailctl mailing report 4 --csv attempts.csv
    """
    from mailctl.services import bounce_reports, reports

    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        actor = app_ctx.actor(session)
        result = reports.mailing_report(session=session, actor=actor, mailing_id=mailing_id)
        bounced = bounce_reports.mailing_bounces(
            session=session, actor=actor, mailing_id=mailing_id
        )
        per_run = bounce_reports.run_bounces(session=session, actor=actor, mailing_id=mailing_id)
        if csv_path is not None:
            pieces = reports.iter_attempts_csv(session=session, actor=actor, mailing_id=mailing_id)
            write_file(csv_path, pieces)
            note(f"wrote {pieces.rows} attempts to {csv_path}")
    runs = [{"run_id": run, "sent": c.sent, **c.as_dict()} for run, c in sorted(per_run.items())]
    # One line per run under the figures; JSON keeps them as records.
    lines = "\n".join(
        f"run {run}: sent {c.sent}, bounced {c.bounced} ({_pct(c.bounce_rate)}),"
        f" complaints {c.complaints} ({_pct(c.complaint_rate)})"
        for run, c in sorted(per_run.items())
    )
    # A quota pause is the mailing's state, not its error: a line of its own, first.
    record = {"waiting": result.waiting(app_ctx.tz), **result.as_dict()}
    record |= bounced.as_dict() | {"runs_bounces": runs if as_json else lines}
    emit_one(record, as_json=as_json, tz=app_ctx.tz)


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


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
    from mailctl.services import delivery, webhooks

    summary = delivery.run_pass(
        engine=app_ctx.engine,
        settings=app_ctx.settings,
        clock=app_ctx.clock,
        worker=delivery.new_worker_id("cli"),
    )
    # Then the webhook queue (run.finished of this pass included); a receiver that is down
    # only leaves its deliveries for a later pass.
    hooks = webhooks.deliver_due(engine=app_ctx.engine, settings=app_ctx.settings)
    if hooks.busy:
        typer.echo(f"webhooks: {hooks.delivered} delivered, {hooks.failed} failed", err=True)
    return summary


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

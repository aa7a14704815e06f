"""`mailctl webhook ...`: URLs that are sent events (run finished, bounced, (un)subscribed)."""

from __future__ import annotations

from typing import Annotated

import typer

from mailctl.cli.context import app_context
from mailctl.cli.output import JsonOpt, emit_rows, note

app = typer.Typer(no_args_is_help=True, add_completion=False)

IdArg = Annotated[int, typer.Argument(help="The webhook's id (see `webhook list`).")]
COLUMNS = ("id", "url", "events", "enabled", "failures", "last_status", "note")


@app.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="http:// or https:// address to POST events to.")],
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            help="run.finished, message.bounced, client.subscribed or client.unsubscribed;"
            " repeat for several (default: all).",
        ),
    ] = None,
) -> None:
    """Register a URL for events; prints its signing secret once.

    Example: mailctl webhook add https://shop.example/hooks/mailctl --event run.finished
    """
    from mailctl.services import webhooks as svc

    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        made = svc.add_webhook(
            session=session, actor=app_ctx.actor(session), url=url, events=event or []
        )
        hook_id, events = made.webhook.id, made.webhook.events
    typer.echo(made.secret)
    note(f"webhook {hook_id} for {', '.join(events)}; the secret above signs each delivery")


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List your webhooks with their events, state and the last response code.

    Example: mailctl webhook list
    """
    from mailctl.services import webhooks as svc

    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        actor = app_ctx.actor(session)
        rows = []
        for hook in svc.list_webhooks(session=session, actor=actor):
            last = svc.last_deliveries(
                session=session, actor=actor, webhook_id=hook.id or 0, limit=1
            )
            rows.append(
                {
                    "id": hook.id,
                    "url": hook.url,
                    "events": " ".join(hook.events),
                    "enabled": hook.is_enabled,
                    "failures": hook.failures,
                    "last_status": (last[0].last_status or last[0].last_error) if last else None,
                    "note": hook.disabled_reason,
                }
            )
    emit_rows(rows, columns=COLUMNS, as_json=as_json, tz=app_ctx.tz, title="Webhooks")


@app.command("log")
def log(ctx: typer.Context, webhook_id: IdArg, as_json: JsonOpt = False) -> None:
    """Show a webhook's latest deliveries: event, state, tries, last response code.

    Example: mailctl webhook log 1
    """
    from mailctl.services import webhooks as svc

    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        found = svc.last_deliveries(
            session=session, actor=app_ctx.actor(session), webhook_id=webhook_id
        )
        rows = [
            {
                "id": d.id,
                "event": d.event,
                "state": d.state,
                "attempts": d.attempts,
                "last_status": d.last_status,
                "last_error": d.last_error,
                "created_at": d.created_at,
                "next_attempt_at": d.next_attempt_at if d.state == "pending" else None,
            }
            for d in found
        ]
    emit_rows(
        rows,
        columns=("id", "event", "state", "attempts", "last_status", "last_error", "created_at"),
        as_json=as_json,
        tz=app_ctx.tz,
        title=f"Webhook {webhook_id}",
    )


@app.command("rm")
def rm(ctx: typer.Context, webhook_id: IdArg) -> None:
    """Remove a webhook and its queue.

    Example: mailctl webhook rm 1
    """
    from mailctl.services import webhooks as svc

    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        svc.remove_webhook(session=session, actor=app_ctx.actor(session), webhook_id=webhook_id)
    note(f"removed webhook {webhook_id}")


@app.command("enable")
def enable(ctx: typer.Context, webhook_id: IdArg) -> None:
    """Turn a webhook that was disabled after failures on again.

    Example: mailctl webhook enable 1
    """
    from mailctl.services import webhooks as svc

    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        svc.enable_webhook(session=session, actor=app_ctx.actor(session), webhook_id=webhook_id)
    note(f"enabled webhook {webhook_id}")


@app.command("test")
def test(ctx: typer.Context, webhook_id: IdArg) -> None:
    """Send a webhook.test event now and print the receiver's answer.

    Example: mailctl webhook test 1
    """
    from mailctl.services import webhooks as svc

    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        row = svc.queue_test(session=session, actor=app_ctx.actor(session), webhook_id=webhook_id)
        row_id = row.id
    svc.deliver_due(engine=app_ctx.engine, settings=app_ctx.settings, only=row_id)
    with app_ctx.session(readonly=True) as session:
        (sent,) = [
            d
            for d in svc.last_deliveries(
                session=session, actor=app_ctx.actor(session), webhook_id=webhook_id
            )
            if d.id == row_id
        ]
        state, status, error = sent.state, sent.last_status, sent.last_error
    if state == "delivered":
        typer.echo(f"delivered: the receiver answered {status}")
        return
    typer.echo(f"error: not delivered: {error or 'webhook disabled'}", err=True)
    raise typer.Exit(1)

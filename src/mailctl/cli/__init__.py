"""The `mailctl` command: a root app and one Typer app per noun."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from mailctl.cli.context import AppContext
from mailctl.errors import MailctlError


class ErrorsToMessages(TyperGroup):
    """Every domain error becomes one line on stderr and exit code 1, never a traceback."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        # Usage errors as one line too, instead of a framed multi-line box.
        from typer import Abort
        from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as exc:
            exc.show()
            result = exc.exit_code
        except UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            typer.echo(f"error: {exc.format_message()}{hint}", err=True)
            result = exc.exit_code
        except ClickException as exc:
            typer.echo(f"error: {exc.format_message()}", err=True)
            result = exc.exit_code
        except Abort:
            typer.echo("aborted", err=True)
            result = 1
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        from sqlalchemy.exc import DBAPIError, IntegrityError

        try:
            return super().invoke(ctx)
        except MailctlError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except IntegrityError as exc:
            reason = str(exc.orig).splitlines()[0] if exc.orig else "constraint failed"
            typer.echo(f"error: refused by the database: {reason}", err=True)
            raise typer.Exit(1) from None
        except DBAPIError as exc:
            reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc).splitlines()[0]
            typer.echo(f"error: database error: {reason}", err=True)
            raise typer.Exit(1) from None
        except OverflowError:
            typer.echo("error: a number is out of range (no such id)", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=ErrorsToMessages,
    no_args_is_help=True,
    help="mailctl: a self-hosted mailing service.",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option("--config", envvar="MAILCTL_CONFIG", help="Path of mailctl.toml."),
    ] = None,
    as_email: Annotated[
        str | None,
        typer.Option(
            "--as", envvar="MAILCTL_AS", help="Act as this user (default: the first admin)."
        ),
    ] = None,
) -> None:
    """mailctl: clients, messages and mailings from the shell; a daemon and a web panel."""
    ctx.obj = AppContext(config, as_email)


def _register() -> None:
    from mailctl.cli import (
        blog,
        clients,
        config_cmd,
        db_cmd,
        delivery,
        layouts,
        mailings,
        messages,
        serve_cmd,
        setup,
        users,
        web_cmd,
    )

    app.add_typer(clients.app, name="client", help="Recipients: add, list, import, export.")
    app.add_typer(messages.app, name="message", help="Messages: Markdown, HTML or text bodies.")
    app.add_typer(layouts.app, name="layout", help="Email layouts around HTML messages.")
    app.add_typer(mailings.app, name="mailing", help="Mailings: schedule, send, logs, reports.")
    app.add_typer(users.app, name="user", help="Accounts and roles.")
    app.add_typer(blog.app, name="blog", help="Blog posts shown on the home page.")
    app.add_typer(config_cmd.app, name="config", help="Show the effective settings.")
    app.add_typer(db_cmd.app, name="db", help="Database migrations.")
    setup.register(app)
    web_cmd.register(app)
    serve_cmd.register(app)
    delivery.register(mailings.app, app)
    from mailctl.cli import crontab_cmd, daemon_cmd

    daemon_cmd.register(app)
    app.add_typer(crontab_cmd.app, name="crontab", help="The cron line that runs `run-due`.")


_register()


def main() -> None:
    app(prog_name="mailctl")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

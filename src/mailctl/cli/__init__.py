"""The `mailctl` command: a root app whose commands are loaded when they are used.

Importing every command module (and the services, Alembic, the password hasher, uvicorn and
APScheduler behind them) would cost each command more than its own work, so the root knows its
commands by name and imports one only when it runs (as hatch does). `mailctl --help` lists
them from the short help kept here; tests/cli/test_help.py checks it matches each command.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from mailctl import __version__
from mailctl.errors import MailctlError

# name: ("module:attribute", short help). The attribute is a Typer app (a command group) or a
# command function.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": (
        "mailctl.cli.setup:init",
        "Create or upgrade the database and, on a new one, the first admin.",
    ),
    "client": ("mailctl.cli.clients:app", "Recipients: add, list, import, export."),
    "message": ("mailctl.cli.messages:app", "Messages: Markdown, HTML or text bodies."),
    "layout": ("mailctl.cli.layouts:app", "Email layouts around HTML messages."),
    "mailing": ("mailctl.cli.mailings:app", "Mailings: schedule, send, logs, reports."),
    "user": ("mailctl.cli.users:app", "Accounts and roles."),
    "blog": ("mailctl.cli.blog:app", "Blog posts shown on the home page."),
    "tag": ("mailctl.cli.tags:app", "Tags on clients: list, delete, make public."),
    "field": ("mailctl.cli.fields:app", "Custom fields of clients."),
    "form": ("mailctl.cli.forms:app", "Public sign-up forms (double opt-in)."),
    "suppression": ("mailctl.cli.suppressions:app", "Addresses never to be mailed."),
    "bounces": (
        "mailctl.cli.bounces:app",
        "Bounces and complaints: import files, fetch the mailbox.",
    ),
    "apikey": ("mailctl.cli.apikey:app", "Keys for the REST API: add, list, revoke."),
    "webhook": ("mailctl.cli.webhook:app", "Outgoing webhooks: add, list, remove, test."),
    "stats": (
        "mailctl.cli.setup:stats",
        "Print the home page figures: mailings, active mailings, unique client emails.",
    ),
    "run-due": (
        "mailctl.cli.delivery:run_due",
        "Run one pass: start due runs, send them and due retries, print a summary.",
    ),
    "daemon": (
        "mailctl.cli.daemon_cmd:daemon",
        "Run the scheduler: send due runs and retries by themselves until stopped.",
    ),
    "status": (
        "mailctl.cli.daemon_cmd:status",
        "Show the daemons' heartbeats, the next due runs and the recipients still waiting.",
    ),
    "crontab": ("mailctl.cli.crontab_cmd:app", "The cron line that runs `run-due`."),
    "smtp": ("mailctl.cli.smtp_cmd:app", "Mail servers: test one, list their state."),
    "serve": (
        "mailctl.cli.serve_cmd:serve",
        "Run the web panel and the scheduler together (one process, no cron needed).",
    ),
    "web": (
        "mailctl.cli.web_cmd:web",
        "Serve the web panel (accounts, clients, mailings, blog) with uvicorn.",
    ),
    "config": ("mailctl.cli.config_cmd:app", "Show and check the effective settings."),
    "db": ("mailctl.cli.db_cmd:app", "Database migrations."),
    "demo": (
        "mailctl.cli.setup:demo",
        "Set up an empty database with demo users, clients, messages, mailings and posts.",
    ),
}


def load(name: str) -> Any:
    """The click command for a root command name, built from its module."""
    target, short_help = COMMANDS[name]
    module_name, attr = target.split(":")
    obj = getattr(importlib.import_module(module_name), attr)
    command: Any
    if isinstance(obj, typer.Typer):
        command = typer.main.get_group(obj)  # a group even while it has one command
        command.help = command.help or short_help
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(obj)
        command = typer.main.get_command(single)
    command.name = name
    tidy_help(command)
    return command


HELP_OPTIONS = ["-h", "--help"]


def tidy_help(command: Any) -> None:
    """Plain flags get no type beside them in --help, repeatable options their item type."""
    # The help option is made on first use and kept: make it now, to tidy it too.
    help_option = command.get_help_option(typer.Context(command, help_option_names=HELP_OPTIONS))
    for param in [*getattr(command, "params", ()), help_option]:
        if isinstance(param, TyperArgument) and param.nargs != 1:
            # `client tag ID TAG...`: an argument's type column names the list type whatever
            # its metavar says; show the item type, as for repeatable options.
            shown = param.display_type_rich(None) or ""  # type: ignore[arg-type]  # no ctx needed
            item = shown.replace("list[", "").replace("]", "")

            def display(ctx: Any, item: str = item) -> str:
                return item

            param.display_type_rich = display  # type: ignore[method-assign]  # this one only
            continue
        if not isinstance(param, TyperOption) or param.metavar is not None:
            continue
        if param.is_flag:
            param.metavar = ""
        elif param.multiple:
            label = param.display_type_rich(None) or ""  # type: ignore[arg-type]  # no ctx needed
            param.metavar = label.replace("list[", "").replace("]", "")
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)


class ErrorsToMessages(TyperGroup):
    """Every domain error becomes one line on stderr and exit code 1, never a traceback."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in COMMANDS:
            return command
        if self._listing:
            # The root's help needs one line per command, not the command itself.
            return TyperCommand(name=cmd_name, help=COMMANDS[cmd_name][1])
        command = load(cmd_name)
        self.add_command(command, cmd_name)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **kwargs: Any,
    ) -> Any:
        # Usage errors as one line too, instead of a framed multi-line box.
        from typer import Abort
        from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

        tidy_help(self)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **kwargs)
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
    context_settings={"help_option_names": HELP_OPTIONS},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mailctl {__version__}")
        raise typer.Exit()


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
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            is_eager=True,
            callback=_print_version,
            help="Print mailctl's version and exit.",
        ),
    ] = False,
) -> None:
    """mailctl: clients, messages and mailings from the shell; a daemon and a web panel."""
    from mailctl.cli.context import AppContext

    ctx.obj = AppContext(config, as_email)


def main() -> None:
    app(prog_name="mailctl")


if __name__ == "__main__":  # pragma: no cover
    main()

"""Every group and command explains itself, with an example."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer

from mailctl.cli import app
from tests.support.cli import ok


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    # Through list_commands/get_command, as click does: the root loads its commands lazily.
    yield path, command
    if hasattr(command, "commands"):
        ctx = typer.Context(command)
        for name in sorted(command.list_commands(ctx)):
            yield from _walk(command.get_command(ctx, name), (*path, name))


COMMANDS = list(_walk(typer.main.get_command(app)))


def test_tree_is_complete() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    for noun, verbs in {
        "client": "add list show edit rm import export",
        "message": "add list show edit rm preview",
        "mailing": "add list show edit rm disable enable",
        "user": "add list show edit block unblock verify set-role passwd rm",
        "blog": "add list show edit rm publish",
        "db": "upgrade downgrade current history",
        "config": "show check",
    }.items():
        for verb in verbs.split():
            assert f"{noun} {verb}" in names
    assert {"init", "stats"} <= names


@pytest.mark.parametrize(
    "path,command", COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_help_has_example(path: tuple[str, ...], command: Any, bare_cli) -> None:
    is_group = hasattr(command, "commands")
    text = command.help or ""
    if is_group:
        assert text.strip(), f"group {' '.join(path) or 'mailctl'} has no help"
    else:
        assert "Example:" in text, f"command {' '.join(path)} has no Example: in its help"
        assert text.strip().splitlines()[0].strip(), "the first line is the summary"
    result = ok(bare_cli(*path, "--help"))
    assert "Usage:" in result.stdout


def test_root_help_lists_each_command_by_its_own_summary(bare_cli) -> None:
    """`mailctl --help` shows the short help kept in cli.COMMANDS without loading the
    commands; it must say what each command's own help says."""
    from mailctl.cli import COMMANDS as REGISTRY
    from mailctl.cli import load

    for name, (_target, short) in REGISTRY.items():
        command = load(name)
        own = " ".join((command.help or "").split("\n\n")[0].split())
        assert own == short, f"cli.COMMANDS[{name!r}] says {short!r}, the command {own!r}"
    listing = ok(bare_cli("--help")).stdout
    for name in REGISTRY:
        assert f" {name} " in listing


def test_plain_flags_show_no_type(bare_cli) -> None:
    for path, command in COMMANDS:
        text = ok(bare_cli(*path, "--help")).stdout
        assert "<bool>" not in text, f"mailctl {' '.join(path)} --help shows <bool>"
        assert "list[" not in text, f"mailctl {' '.join(path)} --help shows list[...]"


def test_version(bare_cli) -> None:
    from importlib.metadata import version

    import mailctl

    for flag in ("--version", "-V"):
        result = ok(bare_cli(flag))
        assert result.stdout == f"mailctl {mailctl.__version__}\n"
    assert mailctl.__version__ == version("mailctl")

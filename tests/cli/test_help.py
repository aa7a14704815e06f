"""Every group and command explains itself, with an example."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer

from mailctl.cli import app
from tests.support.cli import ok


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


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
        "config": "show",
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

"""Data to stdout (JSON, a Rich table on a terminal, tab-separated otherwise), notes to stderr."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any

import typer

from mailctl.timeutil import fmt

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def note(message: str) -> None:
    """A message for the person, on stderr, so stdout stays data."""
    typer.echo(message, err=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _cell(value: Any, tz: str) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return fmt(value, tz)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def emit_rows(
    rows: Sequence[dict[str, Any]],
    *,
    columns: Sequence[str],
    as_json: bool,
    tz: str,
    title: str = "",
) -> None:
    if as_json:
        typer.echo(json.dumps([{k: _jsonable(v) for k, v in r.items()} for r in rows], indent=2))
        return
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title or None)
        for col in columns:
            # Long cells (emails, replies) wrap, even mid-word, instead of being cut off.
            table.add_column(col.replace("_", " "), overflow="fold")
        for row in rows:
            table.add_row(*(_cell(row.get(c), tz) for c in columns))
        console = Console(no_color="NO_COLOR" in os.environ)
        console.print(table)
        if not rows:
            console.print("(none)")
        return
    typer.echo("\t".join(columns))
    for row in rows:
        typer.echo(
            "\t".join(_cell(row.get(c), tz).replace("\t", " ").replace("\n", " ") for c in columns)
        )


def emit_one(record: dict[str, Any], *, as_json: bool, tz: str) -> None:
    if as_json:
        typer.echo(json.dumps({k: _jsonable(v) for k, v in record.items()}, indent=2))
        return
    width = max(len(k) for k in record) if record else 0
    for key, value in record.items():
        text = _cell(value, tz)
        if "\n" in text:
            typer.echo(f"{key.replace('_', ' '):<{width}}  |")
            for line in text.splitlines():
                typer.echo(f"    {line}")
        else:
            typer.echo(f"{key.replace('_', ' '):<{width}}  {text}")


def records(objs: Iterable[Any], fields: Sequence[str]) -> list[dict[str, Any]]:
    return [{f: getattr(o, f) for f in fields} for o in objs]

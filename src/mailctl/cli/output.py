"""Data to stdout (JSON, a Rich table on a terminal, tab-separated otherwise), notes to stderr."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from mailctl.errors import Invalid
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
    rows: Iterable[dict[str, Any]],
    *,
    columns: Sequence[str],
    as_json: bool,
    tz: str,
    title: str = "",
    jsonl: bool = False,
) -> None:
    """Rows as JSON (an array, or one object a line with `jsonl`) or tab-separated, written
    as they come (a generator of rows is never held whole), or a Rich table on a terminal."""
    if as_json or jsonl:
        write_out(json_lines(rows) if jsonl else json_array(rows))
        return
    if sys.stdout.isatty():
        rows = list(rows)
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


def json_array(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """What `json.dumps(list(rows), indent=2)` and a newline print, a row at a time."""
    first = True
    for row in rows:
        text = json.dumps({k: _jsonable(v) for k, v in row.items()}, indent=2)
        # A JSON string never holds a raw line break: every line is one of the object's.
        yield ("[\n" if first else ",\n") + textwrap.indent(text, "  ", lambda _: True)
        first = False
    yield "[]\n" if first else "\n]\n"


def json_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One compact JSON object a line (JSON Lines), a row at a time."""
    for row in rows:
        yield json.dumps({k: _jsonable(v) for k, v in row.items()}) + "\n"


def write_out(pieces: Iterable[str]) -> int:
    """Pieces of text to stdout as they come, in blocks; how many characters."""
    written, block = 0, []
    for piece in pieces:
        block.append(piece)
        written += len(piece)
        if len(block) >= 256:
            typer.echo("".join(block), nl=False)
            block.clear()
    if block:
        typer.echo("".join(block), nl=False)
    return written


def write_file(path: Path, pieces: Iterable[str]) -> None:
    """Pieces of text into a file as they come. Written beside it and renamed
    at the end: a failure half-way (a database error, a full disk) leaves the old file, or
    none, never half a new one. Invalid names the file when it cannot be written."""
    regular = not path.exists() or path.is_file()
    target = path.with_name(f".{path.name}.{os.getpid()}.part") if regular else path
    try:
        # newline="": a CR inside a CSV cell stays as it is, as write_text(newline=None) did
        # on this platform (LF only).
        with target.open("w", encoding="utf-8", newline="") as out:
            for piece in pieces:
                out.write(piece)
        if regular:
            os.replace(target, path)
    except OSError as exc:
        raise Invalid(f"cannot write {path}: {exc.strerror}") from None
    finally:
        if regular and target.exists():
            target.unlink()


def records(objs: Iterable[Any], fields: Sequence[str]) -> list[dict[str, Any]]:
    return [{f: getattr(o, f) for f in fields} for o in objs]

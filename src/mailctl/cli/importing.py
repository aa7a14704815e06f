"""`mailctl client import`: the file streamed into the service, a progress bar on a terminal.

Each bad row is printed on stderr the moment the import reads it, so a long import shows its
problems as it goes. A Rich bar (rows, rows per second, time left by the bytes read) is shown
only when stderr is a terminal: never in pipes, scripts or cron mail.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from mailctl.cli.context import AppContext
from mailctl.cli.output import note
from mailctl.errors import Invalid
from mailctl.services.client_import import ImportProgress, ImportReport, import_stream


class _Bar(ImportProgress):
    def __init__(self, total: int) -> None:
        self._bar: Any = None
        self._began = time.monotonic()
        if not sys.stderr.isatty() or total == 0:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("importing"),
            BarColumn(),
            TextColumn("{task.fields[rows]} rows"),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            # On stderr, with the notes about bad rows, which Rich prints above the bar.
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._bar.add_task("importing", total=total, rows=0, rate="")
        self._bar.start()

    def rows(self, done: int, position: int) -> None:
        if self._bar is not None:
            rate = done / max(time.monotonic() - self._began, 1e-6)
            self._bar.update(self._task, completed=position, rows=done, rate=f"{rate:.0f} rows/s")

    def error(self, line: int, reason: str) -> None:
        if self._bar is not None:
            self._bar.console.print(f"line {line}: {reason}", markup=False, highlight=False)
        else:
            note(f"line {line}: {reason}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@contextmanager
def _opened(file: Path) -> Iterator[IO[bytes]]:
    """The file to import, seekable: stdin ('-') is spooled to a temporary file first (the
    import reads it twice: a UTF-8 check, then the rows)."""
    if str(file) == "-":
        with tempfile.TemporaryFile(prefix="mailctl-import-") as spool:
            shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
            spool.seek(0)
            yield spool
        return
    try:
        stream = file.open("rb")
    except OSError as exc:
        raise Invalid(f"cannot read {file}: {exc.strerror}") from None
    with stream:
        yield stream


def import_file(app_ctx: AppContext, file: Path, *, strict: bool) -> ImportReport:
    with _opened(file) as stream:
        try:
            size = stream.seek(0, 2)
            stream.seek(0)
        except OSError as exc:  # a directory, a pipe given by name
            raise Invalid(f"cannot read {file}: {exc.strerror}") from None
        bar = _Bar(size)
        try:
            with app_ctx.session() as session:
                return import_stream(
                    session=session,
                    actor=app_ctx.actor(session),
                    stream=stream,
                    strict=strict,
                    progress=bar,
                    commit_batches=True,
                )
        finally:
            bar.close()

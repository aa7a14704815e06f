"""Bounce reports from files: one message (.eml), an mbox, or a Maildir directory.

Every path is checked before the first message is read, so a typo in the third of three paths
imports nothing rather than two thirds. The stdlib `mailbox` module reads mboxes and Maildirs
lazily: a large mailbox costs one message of memory at a time.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailctl.errors import Invalid

# A bounce quotes the original at most; anything this large is not one (and is not read).
MAX_REPORT_BYTES = 10_000_000


@dataclass(frozen=True)
class Source:
    path: Path
    kind: str  # message, mbox, maildir


def _kind(path: Path) -> str:
    if path.is_dir():
        if all((path / sub).is_dir() for sub in ("cur", "new")):
            return "maildir"
        raise Invalid(f"{path} is a directory but not a Maildir (no cur/ and new/ in it)")
    if not path.exists():
        raise Invalid(f"{path}: no such file or directory")
    try:
        with path.open("rb") as fh:
            head = fh.read(5)
    except OSError as exc:
        raise Invalid(f"cannot read {path}: {exc.strerror}") from None
    return "mbox" if head == b"From " else "message"


def open_sources(paths: Sequence[str]) -> list[Source]:
    if not paths:
        raise Invalid("name at least one file, mbox or Maildir")
    return [Source(Path(p), _kind(Path(p))) for p in paths]


def read_messages(sources: Sequence[Source]) -> Iterator[bytes | None]:
    """Each message's bytes, in order; None for one too large to be a bounce."""
    for source in sources:
        if source.kind == "message":
            if source.path.stat().st_size > MAX_REPORT_BYTES:
                yield None
                continue
            yield source.path.read_bytes()
            continue
        box: mailbox.Mailbox = (
            mailbox.Maildir(source.path, create=False)
            if source.kind == "maildir"
            else mailbox.mbox(source.path, create=False)
        )
        try:
            for key in box.iterkeys():
                try:
                    with box.get_file(key) as fh:
                        data = fh.read(MAX_REPORT_BYTES + 1)
                except (OSError, KeyError):  # taken away meanwhile by another reader
                    continue
                yield None if len(data) > MAX_REPORT_BYTES else data
        finally:
            box.close()

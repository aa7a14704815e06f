"""Names in the outbox folder, and taking one person's messages out of it (erasure).

An outbox file is named after its recipient so a person reading the folder finds a message;
erasure (services/erasure.py) must then find and remove every file of that person too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def outbox_label(recipient: str) -> str:
    """The recipient as it appears in an outbox file name: safe characters only, 80 at most."""
    return "".join(c if c.isalnum() or c in "@.-_" else "_" for c in recipient)[:80]


def _recipient_of(path: Path) -> str:
    """The X-Envelope-To of an outbox file (its second line), lower-cased; "" if unreadable."""
    try:
        with path.open("rb") as fh:
            head = fh.read(2048).decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    for line in head[:2]:
        if line.lower().startswith("x-envelope-to:"):
            return line.split(":", 1)[1].strip().strip("<>").lower()
    return ""


def erase_from_outbox(directory: Path, address: str) -> int:
    """Delete every outbox file addressed to `address`; returns how many went.

    Only names are listed (the name ends with the recipient, in any case); the envelope line
    inside decides, so a different address with the same safe name stays.
    """
    key = address.strip().lower()
    suffix = f"-{outbox_label(key)}.eml"
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:  # no outbox folder (never written to, or SMTP only)
        return 0
    for entry in entries:
        if entry.name.lower().endswith(suffix) and _recipient_of(Path(entry.path)) == key:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
    return removed

"""Run `mailctl` on a pseudo-terminal, as a person does: what it draws, what it asks."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import pexpect

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
SGR = re.compile(r"\x1b\[([0-9;]*)m")


def colour_codes(raw: str) -> list[str]:
    """The SGR parameters that set a colour (foreground or background), not bold or italic."""
    found = []
    for params in SGR.findall(raw):
        numbers = [int(p) for p in params.split(";") if p.isdigit()]
        i = 0
        while i < len(numbers):
            n = numbers[i]
            if n in (38, 48):  # 38;5;N or 38;2;R;G;B
                found.append(params)
                break
            if 30 <= n <= 37 or 40 <= n <= 47 or 90 <= n <= 97 or 100 <= n <= 107:
                found.append(params)
                break
            i += 1
    return found


@dataclass
class Screen:
    raw: str
    status: int | None

    @property
    def text(self) -> str:
        """What a person reads: escapes removed, line endings plain."""
        return ANSI.sub("", self.raw).replace("\r\n", "\n").replace("\r", "\n")

    def assert_clean(self) -> Screen:
        assert self.status == 0, f"exit {self.status}\n{self.text}"
        assert "Traceback" not in self.text, self.text
        assert "Error" not in self.text.split("\n", 1)[0], self.text
        return self


def terminal_env(*, colour: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("COLUMNS", None)  # the terminal's own size decides
    env.pop("LINES", None)
    env["TERM"] = "xterm-256color"
    env.pop("FORCE_COLOR", None)
    if colour:
        env.pop("NO_COLOR", None)
    else:
        env["NO_COLOR"] = "1"
    return env


def spawn(
    args: Sequence[str], *, colour: bool = True, width: int = 160, rows: int = 50
) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable,
        ["-m", "mailctl", *[str(a) for a in args]],
        env=terminal_env(colour=colour),
        dimensions=(rows, width),
        encoding="utf-8",
        codec_errors="replace",
        timeout=60,
    )


def finish(child: pexpect.spawn) -> Screen:
    child.expect(pexpect.EOF)
    child.close()
    status = child.exitstatus if child.exitstatus is not None else -(child.signalstatus or 0)
    return Screen(child.before or "", status)


def run(args: Sequence[str], *, colour: bool = True, width: int = 160) -> Screen:
    """A command run to its end on a terminal with nothing typed."""
    return finish(spawn(args, colour=colour, width=width))


def run_on_pty(argv: Sequence[str], *, timeout: float = 60) -> tuple[int, str]:
    """`mailctl ARGV` with its stdin, stdout and stderr on a bare pseudo-terminal (no pexpect,
    the environment as it is): (exit code, everything it wrote, escapes and all)."""
    import pty
    import select
    import subprocess

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailctl", *[str(a) for a in argv]],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    try:
        while select.select([master], [], [], timeout)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        code = proc.wait(timeout=timeout)
    return code, b"".join(chunks).decode(errors="replace")

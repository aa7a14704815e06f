"""`python -m mailctl ARGV` as a person runs it: through pipes, or on a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time


def run_mailctl(
    argv: list[str], *, terminal: bool, stdin: str = "", timeout: float = 120
) -> tuple[int, str, float]:
    """(exit code, what it wrote to stderr or the terminal, seconds taken). On a terminal
    stdout and stderr are the same device, as in a shell; line ends come back as '\\n'."""
    command = [sys.executable, "-m", "mailctl", *argv]
    began = time.monotonic()
    if not terminal:
        done = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        return done.returncode, done.stderr, time.monotonic() - began
    master, slave = pty.openpty()
    proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    if stdin:
        os.write(master, stdin.encode())
    chunks = []
    deadline = began + timeout
    try:
        while True:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                proc.kill()
                seen = b"".join(chunks).decode(errors="replace")
                raise AssertionError(f"mailctl still running after {timeout}s:\n{seen}")
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        if proc.poll() is None:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
                raise
    text = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
    return proc.returncode, text, time.monotonic() - began


def lines(text: str) -> list[str]:
    return [line for line in text.strip().splitlines() if line.strip()]

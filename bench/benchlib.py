"""What every benchmark here shares: rounds, min / median / max, the machine's load, and a
child process's wall time and peak memory.

A figure from one run on a shared machine says little: each benchmark runs several rounds,
alternates the cases inside a round (so other load skews them alike), and prints the spread
with the load average it was taken under. Quote the ranges, with those conditions.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min), {os.cpu_count()} CPUs"


def spread(values: Sequence[float], scale: float = 1.0, fmt: str = ".2f") -> str:
    """min / median / max of the values, times `scale`."""
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{low * scale:{fmt}} / {mid * scale:{fmt}} / {high * scale:{fmt}}"


@dataclass(frozen=True)
class Child:
    seconds: float  # wall time
    peak_mb: float  # peak resident set size of the child (ru_maxrss)
    stdout: bytes


def run_child(
    argv: Sequence[str], env: dict[str, str], *, stdin: bytes | None = None, ok: Sequence[int] = (0,)
) -> Child:
    """Run a command; its wall time and its own peak RSS, from the kernel's rusage of exactly
    that child (os.wait4), so that one child's peak never hides another's. Its output goes to
    temporary files, read afterwards: nothing in this process grows with it meanwhile."""
    with tempfile.TemporaryFile() as given, tempfile.TemporaryFile() as out:
        with tempfile.TemporaryFile() as err:
            given.write(stdin or b"")
            given.seek(0)
            start = time.perf_counter()
            proc = subprocess.Popen(argv, env=env, stdin=given, stdout=out, stderr=err)
            _, status, usage = os.wait4(proc.pid, 0)
            took = time.perf_counter() - start
            proc.returncode = code = os.waitstatus_to_exitcode(status)
            if code not in ok:
                err.seek(0)
                raise SystemExit(f"{' '.join(argv)} failed ({code}): {err.read().decode()[-2000:]}")
        out.seek(0)
        return Child(seconds=took, peak_mb=usage.ru_maxrss / 1024, stdout=out.read())

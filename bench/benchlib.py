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
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return (
        f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min),"
        f" {os.cpu_count()} CPUs"
    )


def spread(values: Sequence[float], scale: float = 1.0, fmt: str = ".2f") -> str:
    """min / median / max of the values, times `scale`."""
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{low * scale:{fmt}} / {mid * scale:{fmt}} / {high * scale:{fmt}}"


@dataclass(frozen=True)
class Child:
    seconds: float  # wall time
    peak_mb: float  # peak resident set size of the child (ru_maxrss)
    stdout: bytes


# The command runs under a small Python parent that times it and reads its peak from
# getrusage(RUSAGE_CHILDREN): a child forked straight from a big process (pytest, a benchmark
# holding seeded data) counts that process's pages in its own ru_maxrss until it execs, and
# Linux keeps that high-water mark across the exec.
PEAK = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.call(sys.argv[2:])
took = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    out.write(f"{took} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
sys.exit(code)
"""


def run_child(
    argv: Sequence[str],
    env: dict[str, str],
    *,
    stdin: bytes | None = None,
    ok: Sequence[int] = (0,),
) -> Child:
    """Run a command: its wall time and its own peak RSS (see PEAK). Its output goes to
    temporary files, read afterwards: nothing in this process grows with it meanwhile."""
    with tempfile.TemporaryDirectory(prefix="mailctl-bench-child-") as tmp:
        files = Path(tmp)
        (files / "stdin").write_bytes(stdin or b"")
        with (
            (files / "stdin").open("rb") as given,
            (files / "stdout").open("wb") as out,
            (files / "stderr").open("wb") as err,
        ):
            code = subprocess.call(
                [sys.executable, "-c", PEAK, str(files / "peak"), *argv],
                env=env,
                stdin=given,
                stdout=out,
                stderr=err,
            )
        if code not in ok:
            tail = (files / "stderr").read_bytes().decode(errors="replace")[-2000:]
            raise SystemExit(f"{' '.join(argv)} failed ({code}): {tail}")
        took, peak_kb = (files / "peak").read_text().split()
        return Child(
            seconds=float(took), peak_mb=int(peak_kb) / 1024, stdout=(files / "stdout").read_bytes()
        )

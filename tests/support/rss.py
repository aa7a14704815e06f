"""A command's own peak memory: `peak_of(argv)` runs it under a small Python parent that reads
resource.getrusage(RUSAGE_CHILDREN) once it has ended.

Not os.wait4 from the test itself: a child forked from pytest counts pytest's resident pages in
its ru_maxrss until it execs, and Linux keeps that high-water mark across the exec, so the
figure would be pytest's size, not the command's.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PARENT = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


@dataclass(frozen=True)
class Done:
    code: int
    stdout: bytes
    stderr: bytes
    peak_mb: float


def peak_of(argv: Sequence[str], tmp_path: Path, *, timeout: float = 300) -> Done:
    """Run `argv` (stdin empty, output to files); its exit code, output and peak RSS in MB."""
    out, err, peak = tmp_path / "child.out", tmp_path / "child.err", tmp_path / "child.peak"
    with out.open("wb") as o, err.open("wb") as e:
        code = subprocess.call(
            [sys.executable, "-c", PARENT, str(peak), *argv],
            stdin=subprocess.DEVNULL,
            stdout=o,
            stderr=e,
            timeout=timeout,
        )
    return Done(code, out.read_bytes(), err.read_bytes(), int(peak.read_text()) / 1024)

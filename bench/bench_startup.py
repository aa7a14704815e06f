"""CLI start-up: `mailctl --version` and `mailctl client list` against `import typer, sqlmodel`.

    python bench/bench_startup.py [--rounds 15] [--clients 20]

A temp data dir gets a database (`mailctl init`) and a few clients. Then, round after round,
the three commands run alternately as fresh processes (so other load on the machine skews
every case alike), and each command's wall time is printed as min / median / max, with the
ratio of its median and its min to the baseline's: a Python process that only imports typer
and sqlmodel, the two libraries no mailctl command can start without. Target: ratio <= 1.5.

`--help` is measured too, for information: it lists every command, so it loads every CLI
module (never the services behind them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import load_average  # noqa: E402

TARGET = 1.5


def run(argv: list[str], env: dict[str, str], stdin: str | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        argv, env=env, input=stdin, capture_output=True, text=True, check=False, timeout=120
    )
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()

    py = sys.executable
    mailctl = [py, "-m", "mailctl"]
    with tempfile.TemporaryDirectory(prefix="mailctl-bench-startup-") as tmp:
        home = Path(tmp)
        (home / "mailctl.toml").write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILCTL_")}
        env |= {
            "MAILCTL_CONFIG": str(home / "mailctl.toml"),
            "MAILCTL_GENERAL_DATA_DIR": str(home / "data"),
            "MAILCTL_SCHEDULER_TIMEZONE": "UTC",
            "NO_COLOR": "1",
        }
        run(
            [*mailctl, "init", "--admin", "bench@example.com", "--password-stdin"],
            env,
            "bench-password-1\n",
        )
        csv = "email,full_name,comment\n" + "".join(
            f"c{i}@example.com,Client {i},\n" for i in range(args.clients)
        )
        (home / "clients.csv").write_text(csv)
        run([*mailctl, "client", "import", str(home / "clients.csv")], env)

        cases = {
            "python -c 'import typer, sqlmodel'": [py, "-c", "import typer, sqlmodel"],
            "mailctl --version": [*mailctl, "--version"],
            "mailctl client list": [*mailctl, "client", "list"],
            "mailctl stats": [*mailctl, "stats"],
            "mailctl status": [*mailctl, "status"],
            "mailctl --help": [*mailctl, "--help"],
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for name, argv in cases.items():  # warm the OS file cache once
            run(argv, env)
        for _ in range(args.rounds):
            for name, argv in cases.items():
                times[name].append(run(argv, env))

    base_name = next(iter(cases))
    base_min, base_median = min(times[base_name]), statistics.median(times[base_name])
    print(f"{args.rounds} rounds, alternating; wall time per process in ms; {load_average()}")
    print(f"{'command':<36} {'min':>7} {'median':>7} {'max':>7}  {'ratio median':>12}  ratio min")
    for name, values in times.items():
        median = statistics.median(values)
        ratio_median, ratio_min = median / base_median, min(values) / base_min
        flag = "" if name in (base_name, "mailctl --help") or ratio_median <= TARGET else "  !"
        print(
            f"{name:<36} {min(values) * 1000:7.0f} {median * 1000:7.0f} {max(values) * 1000:7.0f}"
            f"  {ratio_median:12.2f}  {ratio_min:9.2f}{flag}"
        )
    print(f"target: --version, client list, stats and status at most {TARGET}x the baseline")


if __name__ == "__main__":
    main()

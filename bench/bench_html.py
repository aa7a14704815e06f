"""HTML newsletters against plain text: the same mailing sent as text and as Markdown in the
default layout, over the same local sink, in one run.

    python bench/bench_html.py [--clients 3000] [--rounds 2]

Each round builds two fresh SQLite databases with N clients (one text mailing, one Markdown
mailing of the same words), sends each with one `run_pass` over SMTP and checks every ledger
and log row. The best round of each is kept. Markdown rendering, the layout and CSS inlining
happen once per message per pass; per recipient only the templates are rendered (both parts,
HTML escaped) and the multipart body is built.

Target: the Markdown mailing at >= 0.8 x the text mailing's throughput.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_delivery import BODY, build_database, configure, run_mailctl, sink  # noqa: E402

MARKDOWN = (
    "# Hello {{ client.first_name }}\n\n"
    + "This month we have **news** for you, {{ client.email }}. " * 8
    + "\n\n[Read it online](https://example.com/news)\n\nRegards,\nthe team\n"
)


def one(port: int, n: int, body_format: str, body: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"mailctl-bench-{body_format}-") as tmp:
        configure(Path(tmp), port)
        mailing_id = build_database(n, body_format=body_format, body=body)
        return run_mailctl(mailing_id, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    n = args.clients
    best: dict[str, dict[str, float]] = {}
    with sink() as (port, kind):
        print(f"sink: {kind} on 127.0.0.1:{port}; {n} recipients per mailing")
        for round_no in range(1, args.rounds + 1):
            # Alternated, so a slower stretch of a shared machine hits both kinds alike.
            for body_format, body in (("text", BODY), ("markdown", MARKDOWN)):
                result = one(port, n, body_format, body)
                print(
                    f"round {round_no} {body_format:8}: {result['rate']:8.0f} msg/s"
                    f"  ({result['seconds']:.2f}s, {result['cpu_us']:.0f} us CPU per message)"
                )
                if body_format not in best or result["rate"] > best[body_format]["rate"]:
                    best[body_format] = result
    ratio = best["markdown"]["rate"] / best["text"]["rate"]
    print(
        f"text {best['text']['rate']:.0f} msg/s, markdown+layout {best['markdown']['rate']:.0f}"
        f" msg/s: ratio {ratio:.2f} (target >= 0.80) {'OK' if ratio >= 0.8 else 'BELOW TARGET'}"
    )


if __name__ == "__main__":
    main()

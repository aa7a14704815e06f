"""The README's API examples, run as written against a running panel: the curl calls (a
website adds a subscriber, a shop starts a mailing) and the Python (httpx) script."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api import live
from tests.support.env import PASSWORD

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text()
    start = text.index("## REST API")
    return text[start : text.index("\n## ", start + 1)]


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", _section(), flags=re.S)


@pytest.fixture
def live_panel(tmp_path: Path):  # type: ignore[no-untyped-def]
    data = tmp_path / "readme-api"
    env = live.environment(data)
    live.mailctl(
        env, "init", "--admin", "shop@example.com", "--password-stdin", input=PASSWORD + "\n"
    )
    live.mailctl(
        env,
        "message",
        "add",
        "--subject",
        "New in the shop",
        "--body",
        "Hello {{ client.full_name }}",
    )
    key = live.mailctl(env, "apikey", "add", "--name", "shop").strip()
    with live.panel(env, data) as base:
        yield {**env, "MAILCTL_URL": base, "MAILCTL_KEY": key}


def test_the_curl_examples(live_panel) -> None:  # type: ignore[no-untyped-def]
    (block,) = _blocks("bash")
    assert block.count("curl ") == 2
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        env=live_panel,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    decoder, text, found = json.JSONDecoder(), done.stdout.strip(), []
    while text:
        value, end = decoder.raw_decode(text)
        found.append(value)
        text = text[end:].strip()
    client, mailing = found
    assert client["email"] == "new.customer@example.com" and client["tags"] == ["shop"]
    assert mailing["id"] >= 1 and mailing["tags"] == ["shop"] and mailing["audience"] == "tags"


def test_the_python_example(live_panel) -> None:  # type: ignore[no-untyped-def]
    (script,) = _blocks("python")
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=live_panel,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"client \d+", lines[0]), lines
    assert re.fullmatch(r"runs \d+ sent \d+", lines[1]), lines
    # The mailing started at once and goes to the tagged client.
    listed = json.loads(live.mailctl(live_panel, "mailing", "list", "--json"))
    assert [m["every"] for m in listed] == ["once"]

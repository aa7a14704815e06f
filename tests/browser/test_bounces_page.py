"""The mailing page after bounces and complaints came back, in Chromium at phone and desktop
size: the counts and rates, the runs table's new columns, the chart's bars."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.bounces import corpus
from tests.support.browser import ADMIN, Panel, mailctl_cli
from tests.support.env import PASSWORD

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
CLIENTS = [f"reader{i}@example.com" for i in range(8)]


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_mailing_page_shows_bounces(
    panel: Panel, browser: Any, shoot: Any, tmp_path: Path, viewport
) -> None:
    env = dict(os.environ)
    for address in CLIENTS:
        mailctl_cli(env, "client", "add", address)
    mailctl_cli(env, "message", "add", "--subject", "News", "--body", "Hello", "--format", "text")
    mailctl_cli(
        env,
        "mailing",
        "add",
        "--message",
        "1",
        "--all-clients",
        "--start",
        "now",
        "--every",
        "once",
    )
    reports = [
        corpus.postfix(CLIENTS[0], "mailctl@localhost"),
        corpus.exim(CLIENTS[1], "mailctl@localhost"),
        corpus.gmail(CLIENTS[2], "mailctl@localhost", temporary=True),
        corpus.arf(CLIENTS[3], "mailctl@localhost"),
    ]
    paths = []
    for index, raw in enumerate(reports):
        path = tmp_path / f"{index}.eml"
        path.write_bytes(raw)
        paths.append(str(path))
    mailctl_cli(env, "bounces", "import", *paths)

    page = browser.new_context(viewport=viewport).new_page()
    page.goto(panel.url("/login"))
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    page.goto(panel.url("/mailings/1"))
    summary = page.locator("#bounces")
    assert summary.is_visible()
    text = " ".join(summary.inner_text().split())
    assert "Bounced 3 (37.5%) (2 hard, 1 soft) · complaints 1 (12.50%)" in text, text
    runs = page.locator("#runs")
    assert "37.5%" in runs.inner_text() and "12.5%" in runs.inner_text()
    chart = page.locator(".chart-narrow svg" if viewport is PHONE else ".chart-wide svg")
    assert chart.is_visible()
    assert "bounced" in chart.inner_html() and "complained" in chart.inner_html()
    assert not panel.errors()
    shoot(page, f"bounces-mailing-{'phone' if viewport is PHONE else 'desktop'}")

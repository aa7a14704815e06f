"""A mailing paused by a full quota, on the panel's mailing page: a state of its own
("waiting for quota of <server>: resumes at <time>"), not a "Needs attention" error."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import ADMIN, Panel, mailctl_cli
from tests.support.env import PASSWORD
from tests.support.relay import Relay
from tests.support.smtp import smtp_env

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture
def relay(monkeypatch: pytest.MonkeyPatch) -> Iterator[Relay]:
    """A relay with a quota of one message a day, for the CLI and the panel's own sender."""
    with Relay() as running:
        for key, value in smtp_env(running.port, smtp_rate_per_day=1, smtp_name="relay-eu").items():
            monkeypatch.setenv(key, value)
        yield running


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_quota_pause_is_shown_as_waiting(
    relay: Relay, panel: Panel, browser: Any, shoot: Any, viewport: dict[str, int]
) -> None:
    env = {**os.environ, "MAILCTL_GENERAL_LOG_LEVEL": "WARNING"}
    for i in range(3):
        mailctl_cli(env, "client", "add", f"c{i}@example.org", "--name", f"Client {i}")
    mailctl_cli(env, "message", "add", "--subject", "Hi", "--body", "Hello")
    # Due now: sent at once, one message, then the day's quota of one is full.
    mailctl_cli(env, "mailing", "add", "--message", "1", "--all-clients", "--start", "now")
    assert len(relay.rcpts()) == 1
    page = browser.new_context(viewport=viewport).new_page()
    page.goto(panel.url("/login"))
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    page.goto(panel.url("/mailings/1"))
    waiting = page.locator("#quota-wait")
    assert waiting.is_visible(), page.content()
    text = waiting.inner_text()
    assert "Waiting for quota of relay-eu: resumes at " in text, text
    assert page.get_by_text("Needs attention").count() == 0
    assert len(relay.rcpts()) == 1  # the panel's sender keeps to the quota too
    box = waiting.bounding_box()
    assert box is not None and box["width"] <= viewport["width"]
    shoot(page, f"quota-wait-{'phone' if viewport is PHONE else 'desktop'}")

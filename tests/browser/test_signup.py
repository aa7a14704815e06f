"""A visitor subscribes through a public sign-up form in Chromium, on a phone and a desktop:
the confirmation mail from the outbox, the button that confirms, the client with the form's
tags; replayed and tampered links refused; then the preference page of a real newsletter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.support.browser import ADMIN, Panel, link_in

pytestmark = pytest.mark.browser

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
WAIT_MS = 10_000


def _cli(panel: Panel, *args: str) -> str:
    env = {**os.environ, "MAILCTL_WEB_BASE_URL": panel.base_url}
    done = subprocess.run(
        [sys.executable, "-m", "mailctl", "--as", ADMIN, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"mailctl {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def _clients(panel: Panel) -> dict[str, str]:
    return {c["email"]: c["tags"] for c in json.loads(_cli(panel, "client", "list", "--json"))}


def _status(page: Any, url: str) -> int:
    response = page.goto(url)
    assert response is not None
    return int(response.status)


def _fits(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


@pytest.mark.parametrize("size", list(SIZES))
def test_sign_up_confirm_and_choose_lists(panel: Panel, browser: Any, shoot: Any, size: str):
    url = _cli(panel, "form", "add", "--tag", "news", "--tag", "offers", "--title", "Shop news")
    path = url.strip().removeprefix(panel.base_url)
    assert path.startswith("/subscribe/")
    address = f"visitor-{size}@example.org"
    page = browser.new_context(viewport=SIZES[size]).new_page()
    page.set_default_timeout(WAIT_MS)

    assert _status(page, panel.url(path)) == 200
    shoot(page, f"signup-form-{size}")
    assert _fits(page)
    page.get_by_label("Email").fill(address)
    page.get_by_label("Name").fill("Vera Visitor")
    asked = time.time()
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()
    assert "on its way" in page.locator("#done-text").inner_text()
    shoot(page, f"signup-sent-{size}")
    assert address not in _clients(panel)  # no client before confirming

    link = link_in(panel.newest_mail(address, asked), "/subscribe/confirm/")
    assert _status(page, link) == 200
    assert address not in _clients(panel)  # opening the link is not confirming
    shoot(page, f"signup-confirm-{size}")
    assert _fits(page)
    page.get_by_role("button", name="Yes, subscribe me").click()
    page.wait_for_load_state()
    assert "confirmed" in page.locator("#done-text").inner_text()
    shoot(page, f"signup-done-{size}")
    assert _clients(panel)[address] == "news offers"

    assert _status(page, link) == 400  # replayed
    assert "already been used" in page.locator("body").inner_text()
    assert _status(page, link[:-4] + "abcd") == 400  # tampered
    shoot(page, f"signup-replayed-{size}")

    # A newsletter to the tag: its unsubscribe link opens the preference page.
    _cli(panel, "tag", "public", "news")
    _cli(panel, "tag", "public", "offers")
    message = _cli(panel, "message", "add", "--subject", "News", "--body", "Hello").strip()
    sent = time.time()
    _cli(
        panel,
        "mailing",
        "add",
        "--message",
        message,
        "--tag",
        "news",
        "--start",
        "now",
        "--every",
        "week",
    )
    header = str(panel.newest_mail(address, sent)["List-Unsubscribe"])
    preferences = header.strip("<>").split(">")[0]
    assert preferences.startswith(panel.url("/unsubscribe/")), header
    assert _status(page, preferences) == 200
    shoot(page, f"preferences-{size}")
    assert _fits(page)
    page.get_by_label("offers").uncheck()
    page.get_by_role("button", name="Save my lists").click()
    page.wait_for_load_state()
    assert page.locator("#saved").is_visible()
    shoot(page, f"preferences-saved-{size}")
    assert _clients(panel)[address] == "news"
    assert panel.errors() == []

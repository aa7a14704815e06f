"""A template bomb typed into the message form in a real browser: the panel answers within
the render budget with the reason above the form, and keeps what was typed."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support.browser import ADMIN, Panel
from tests.support.env import PASSWORD

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# No output inside: the clock stops it, not the output cap (which a fast machine reaches first).
BOMB = (
    "{% for a in client.email * 10000 %}{% for b in client.email * 10000 %}{% endfor %}{% endfor %}"
)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_bomb_in_the_message_form(panel: Panel, browser: Any, shoot: Any, viewport) -> None:
    page = browser.new_context(viewport=viewport).new_page()
    page.goto(panel.url("/login"))
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    page.goto(panel.url("/messages/new"))
    page.get_by_label("Subject").fill("Hello {{ client.first_name }}")
    page.get_by_label("Body").fill(BOMB)
    began = time.monotonic()
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    took = time.monotonic() - began
    alert = page.get_by_role("alert").filter(has_text="takes longer than 1s to render")
    assert alert.is_visible(), page.content()
    assert took < 15  # the budget is one second: a bound on runaway work, not a speed test
    assert page.get_by_label("Body").input_value() == BOMB  # nothing typed is lost
    shoot(page, f"budget-message-form-{'phone' if viewport is PHONE else 'desktop'}")

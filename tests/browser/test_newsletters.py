"""HTML newsletters in a real Chromium: a hostile message's HTML cannot run in the panel,
whoever looks at it (owner, admin, a manager overseeing the mailing); the default layout
reads well at 600 px and on a phone."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.support.browser import ADMIN, MANAGER, Panel, mailctl_cli
from tests.support.env import PASSWORD

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
OWNER = "owner@example.com"
# Every way the author's HTML could try to run: a script, an event handler, a javascript:
# link, a form, a meta refresh; each would log "pwned" and write to the panel's storage.
HOSTILE = (
    "<h1>Hi {{ client.first_name }}</h1>\n"
    "<script>console.log('pwned-script');"
    " try { parent.localStorage.setItem('pwned', 'script') }"
    " catch (e) { console.log('pwned-blocked-' + e.name) }</script>\n"
    '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="'
    " onerror=\"console.log('pwned-onerror')\" onload=\"console.log('pwned-onload')\">\n"
    '<p><a id="js" href="javascript:console.log(\'pwned-link\')">click me</a></p>\n'
    '<form action="/logout" method="post"><button id="go">Go</button></form>\n'
    "<svg onload=\"console.log('pwned-svg')\"></svg>\n"
)
MARKDOWN = """# June news for {{ client.first_name }}

Our **summer sale** starts on Monday. Everything in the shop is *20% off* for a week,
and members get free delivery.

[Visit the shop](https://example.com/shop)

## What's new

- A new line of linen shirts
- Longer opening hours on Saturdays
- A café corner in the Main Street store

> "The best shop in town." (a happy customer)
"""


def _seed(tmp: Any) -> dict[str, str]:
    env = {**os.environ, "MAILCTL_GENERAL_LOG_LEVEL": "WARNING"}
    mailctl_cli(
        env, "user", "add", OWNER, "--role", "user", "--password-stdin", stdin=PASSWORD + "\n"
    )
    body = tmp / "hostile.html"
    body.write_text(HOSTILE)
    news = tmp / "news.md"
    news.write_text(MARKDOWN)
    as_owner = {**env, "MAILCTL_AS": OWNER}
    mailctl_cli(as_owner, "client", "add", "ann@example.org", "--name", "Ann Archer")
    mailctl_cli(
        as_owner,
        "message",
        "add",
        "--subject",
        "Hostile",
        "--body-file",
        str(body),
        "--format",
        "html",
    )
    mailctl_cli(as_owner, "message", "add", "--subject", "June news", "--body-file", str(news))
    mailctl_cli(
        as_owner,
        "mailing",
        "add",
        "--message",
        "1",
        "--all-clients",
        "--start",
        "2030-01-01 09:00",
        "--every",
        "week",
    )
    return env


def _login(page: Any, panel: Panel, email: str) -> None:
    page.goto(panel.url("/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_hostile_message_runs_nothing_for_any_viewer(
    panel: Panel, browser: Any, shoot: Any, tmp_path, viewport
) -> None:
    _seed(tmp_path)
    size = "phone" if viewport is PHONE else "desktop"
    for who, path in (
        (OWNER, "/messages/1"),
        (ADMIN, "/messages/1"),
        (MANAGER, "/mailings/1/message"),
    ):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        logged: list[str] = []
        page.on("console", lambda m, logged=logged: logged.append(m.text))
        _login(page, panel, who)
        response = page.goto(panel.url(path))
        assert response is not None and response.ok, (who, path)
        page.wait_for_load_state("load")
        frame_element = page.locator("iframe#preview-html")
        assert frame_element.get_attribute("sandbox") == ""
        frame = frame_element.content_frame
        # The author's HTML is there, in the frame (the heading renders)...
        expected = "Hi Sample" if who == MANAGER else "Hi Ann"
        assert frame.locator("h1").first.inner_text() == expected
        # ...and nothing of it runs: not the script, not a handler, not a javascript: link.
        frame.locator("#js").click()
        frame.locator("#go").click(no_wait_after=True)
        page.wait_for_timeout(500)
        assert [line for line in logged if "pwned" in line] == [], (who, logged)
        assert page.evaluate("localStorage.getItem('pwned')") is None
        # The panel page is still the panel page, its user still signed in.
        assert page.url == panel.url(path)
        # (the log-out form is there: on a phone it sits in the closed Menu)
        assert page.locator("form[action='/logout']").count() >= 1
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        shoot(page, f"newsletter-hostile-{who.split('@')[0]}-{size}")
        context.close()
    assert panel.errors() == []


@pytest.mark.parametrize("width", [600, 390])
def test_the_default_layout_reads_well(
    panel: Panel, browser: Any, shoot: Any, tmp_path, width
) -> None:
    _seed(tmp_path)
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    _login(page, panel, OWNER)
    page.goto(panel.url("/messages/2/preview.html?client=sample"))
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == "June news for Sample"
    # No sideways scrolling, the card no wider than 600 px, the footer's links present.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    card = page.locator("table.card").bounding_box()
    assert card is not None and card["width"] <= 600 and card["width"] <= width
    assert page.get_by_role("link", name="Unsubscribe").count() == 1
    font = page.evaluate("getComputedStyle(document.querySelector('td.content')).fontSize")
    assert font == "16px"
    shoot(page, f"newsletter-default-layout-{width}")
    # Dark mode: the clients that honour prefers-color-scheme get a dark card, light text.
    page.emulate_media(color_scheme="dark")
    colours = page.evaluate(
        "[getComputedStyle(document.querySelector('table.card')).backgroundColor,"
        " getComputedStyle(document.querySelector('td.content')).color]"
    )
    assert colours == ["rgb(35, 39, 43)", "rgb(233, 236, 239)"], colours
    shoot(page, f"newsletter-default-layout-{width}-dark")
    context.close()


def test_the_message_page_shows_the_preview_on_a_phone(
    panel: Panel, browser: Any, shoot: Any, tmp_path
) -> None:
    _seed(tmp_path)
    for viewport, size in ((PHONE, "phone"), (DESKTOP, "desktop")):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        _login(page, panel, OWNER)
        page.goto(panel.url("/messages/2?client=1"))
        frame = page.locator("iframe#preview-html").content_frame
        assert frame.locator("h1").inner_text() == "June news for Ann"
        assert "June news for Ann" in page.locator("#preview-text").inner_text()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        shoot(page, f"newsletter-message-{size}")
        page.goto(panel.url("/layouts"))
        shoot(page, f"newsletter-layouts-{size}")
        context.close()

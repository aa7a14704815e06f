"""The panel's pages under its Content-Security-Policy in a real Chromium: no violation on any
page, its own stylesheet applied, and the panel refuses to be framed (clickjacking)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.support.browser import ADMIN, Panel, mailctl_cli
from tests.support.env import PASSWORD

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});
"""
PUBLIC = ["/", "/login", "/register", "/blog", "/password/forgot", "/verify/resend"]
SIGNED_IN = [
    "/dashboard",
    "/clients",
    "/clients/new",
    "/clients/import",
    "/messages",
    "/messages/new",
    "/messages/1",
    "/messages/1/edit",
    "/layouts",
    "/layouts/new",
    "/mailings/1/message",
    "/mailings",
    "/mailings/new",
    "/mailings/1",
    "/mailings/1/attempts",
    "/manage/users",
    "/editor/posts",
    "/editor/posts/new",
    "/account",
]


def _seed(panel: Panel) -> None:
    env = {**os.environ, "MAILCTL_GENERAL_LOG_LEVEL": "WARNING"}
    mailctl_cli(env, "client", "add", "ann@example.org", "--name", "Ann Archer")
    mailctl_cli(env, "message", "add", "--subject", "Hi {{ client.first_name }}", "--body", "Hello")
    mailctl_cli(
        env,
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


def _violations(page: Any, url: str) -> list[str]:
    response = page.goto(url)
    assert response is not None and response.ok, f"{url}: {response.status if response else ''}"
    page.wait_for_load_state("load")
    return list(page.evaluate("window.__csp"))


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_no_page_violates_the_policy(panel: Panel, browser: Any, shoot: Any, viewport) -> None:
    _seed(panel)
    context = browser.new_context(viewport=viewport)
    context.add_init_script(WATCH)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    size = "phone" if viewport is PHONE else "desktop"
    found: dict[str, list[str]] = {}
    for path in PUBLIC:
        found[path] = _violations(page, panel.url(path))
    # The page's own stylesheet is applied (a blocked one would leave the box full width).
    width = page.goto(panel.url("/login")) and page.evaluate(
        "getComputedStyle(document.querySelector('.box-narrow')).maxWidth"
    )
    assert width == "448px", width
    shoot(page, f"csp-login-{size}")
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    for path in SIGNED_IN:
        found[path] = _violations(page, panel.url(path))
    shoot(page, f"csp-account-{size}")
    page.goto(panel.url("/mailings/1"))
    shoot(page, f"csp-mailing-{size}")
    assert {p: v for p, v in found.items() if v} == {}
    assert [line for line in console if "Content Security Policy" in line] == []
    context.close()


def test_the_panel_cannot_be_framed(panel: Panel, browser: Any) -> None:
    page = browser.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text))
    # Any other origin: a page of its own (about:blank) framing the panel's login page.
    page.set_content(f'<iframe id="f" src="{panel.url("/login")}"></iframe>')
    page.wait_for_timeout(1500)
    frame = page.frame_locator("#f")
    assert frame.locator("input[name=email]").count() == 0  # nothing of the panel rendered
    assert any("frame-ancestors" in line or "X-Frame-Options" in line for line in blocked), blocked


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_pass_stopped_by_the_breaker_shows_on_the_mailing_page(
    panel: Panel, browser: Any, shoot: Any, engine: Any, viewport
) -> None:
    from sqlalchemy import update

    from mailctl.models import Mailing

    _seed(panel)
    reason = (
        "stopped after 5 consecutive messages with no reply from the server (no reply after"
        " the message was sent: timed out after 30s); the rest waits for the next pass"
    )
    with engine.begin() as conn:
        conn.execute(update(Mailing).where(Mailing.id == 1).values(last_error=reason))
    page = browser.new_context(viewport=viewport).new_page()
    page.goto(panel.url("/login"))
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    page.goto(panel.url("/mailings/1"))
    alert = page.get_by_role("alert").filter(has_text="stopped after 5 consecutive")
    assert alert.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shoot(page, f"breaker-mailing-{'phone' if viewport is PHONE else 'desktop'}")

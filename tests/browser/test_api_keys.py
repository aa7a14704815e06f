"""The account page's API keys and the API docs page in a real Chromium, at phone and desktop
size: a key is made (shown once), used, listed with its last use, revoked; no CSP violation,
no sideways scrolling; the docs page works with nothing from outside."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.support.browser import ADMIN, Panel
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


def _api(panel: Panel, key: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        panel.url("/api/v1/me"), headers={"Authorization": f"Bearer {key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_make_use_and_revoke_a_key(panel: Panel, browser: Any, shoot: Any, viewport) -> None:
    size = "phone" if viewport is PHONE else "desktop"
    context = browser.new_context(viewport=viewport)
    context.add_init_script(WATCH)
    page = context.new_page()
    page.goto(panel.url("/login"))
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    page.goto(panel.url("/account"))
    page.get_by_label("Name", exact=True).last.fill("website")
    page.get_by_label("Scope").select_option("read")
    page.get_by_role("button", name="Make a key").click()
    page.wait_for_load_state()
    key = page.locator("#new-key").inner_text().strip()
    assert key.startswith("mk_")
    shoot(page, f"api-key-made-{size}")
    status, me = _api(panel, key)
    assert status == 200 and me["email"] == ADMIN and me["key_scope"] == "read"
    page.goto(panel.url("/account"))
    assert page.locator("#new-key").count() == 0  # shown once
    row = page.locator("#api-keys li", has_text="website")
    assert row.count() == 1 and "read" in row.inner_text() and "never" not in row.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shoot(page, f"api-keys-{size}")
    row.get_by_role("button", name="Revoke").click()
    page.wait_for_load_state()
    assert "Revoked API key" in page.content()
    assert _api(panel, key)[0] == 401
    page.goto(panel.url("/api/v1/docs"))
    assert page.get_by_role("heading", name="mailctl API").is_visible()
    # The top of the page (the whole one is long: every schema is printed).
    page.screenshot(path=str(shoot(page, f"api-docs-{size}")), full_page=False)
    assert page.evaluate("window.__csp") == []
    context.close()

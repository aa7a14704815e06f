"""The whole part 2 of the assignment in a real browser, against a real `mailctl serve`.

A visitor registers, confirms the address from the outbox, logs in, adds clients, a message and
a mailing that starts at once, and watches its attempts arrive; a manager blocks the account and
the open session ends; an editor publishes a post that shows on the home page. Screenshots of
the main pages go to artifacts/screenshots/.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.browser import EDITOR, MANAGER, Panel, link_in
from tests.support.env import PASSWORD

pytestmark = pytest.mark.browser

USER = "newcomer@example.com"
CLIENTS = (("ann@example.org", "Ann Archer"), ("bob@example.org", "Bob Baker"))
SUBJECT = "Spring news for {{ client.full_name }}"
POST_TITLE = "Five tips for a better newsletter"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
WAIT_MS = 10_000


def visit(page: Any, url: str) -> None:
    """page.goto, failing with the page's text unless the answer is a success."""
    response = page.goto(url)
    assert response is not None, url
    assert response.ok, f"{url} answered {response.status}: {page.locator('body').inner_text()}"


def log_in(page: Any, panel: Panel, address: str, password: str = PASSWORD) -> None:
    visit(page, panel.url("/login"))
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()


def no_horizontal_overflow(page: Any) -> bool:
    return bool(
        page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"),
    )


def test_register_send_block_and_publish(panel: Panel, browser: Any, shoot: Any) -> None:
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.set_default_timeout(WAIT_MS)

    # -- a visitor registers and confirms the address from the outbox ----------------------
    visit(page, panel.url("/"))
    shoot(page, "01-home-empty")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email").fill(USER)
    page.get_by_label("Name").fill("Nina Newcomer")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    sent_after = time.time()
    page.get_by_role("button", name="Register").click()
    page.get_by_text("Check your email").first.wait_for()

    # No login before the address is confirmed.
    visit(page, panel.url("/login"))
    page.get_by_label("Email").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("alert").wait_for()
    assert "/login" in page.url, "logged in before confirming the address"

    verify_url = link_in(panel.newest_mail(USER, after=sent_after), "/verify/")
    assert verify_url.startswith(panel.base_url + "/verify/")
    visit(page, verify_url)
    page.get_by_role("button", name="Confirm my email address").click()
    page.wait_for_url(re.compile(r"/login"))
    page.get_by_text("Your email address is confirmed").wait_for()

    log_in(page, panel, USER)
    assert page.url.endswith("/dashboard")
    shoot(page, "02-dashboard-empty")

    # -- two clients, a message with a placeholder, a mailing starting now -----------------
    for address, name in CLIENTS:
        visit(page, panel.url("/clients/new"))
        page.get_by_label("Email").fill(address)
        page.get_by_label("Full name").fill(name)
        page.get_by_role("button", name="Save").click()
        page.wait_for_url(re.compile(r"/clients$"))
    for address, _ in CLIENTS:
        page.get_by_role("cell", name=address).wait_for()
    shoot(page, "03-clients")

    visit(page, panel.url("/messages/new"))
    page.get_by_label("Subject").fill(SUBJECT)
    page.get_by_label("Body").fill("Hello {{ client.full_name }},\n\nour spring offers are here.\n")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/messages/\d+$"))

    visit(page, panel.url("/mailings/new"))
    page.get_by_label("Message").select_option(label=SUBJECT)
    page.get_by_label(re.compile(r"All my clients")).check()
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/mailings/\d+$"))
    mailing_url = page.url

    # The outbox transport accepts every message: reload until both are logged as sent.
    deadline = time.monotonic() + 30
    while True:
        visit(page, mailing_url)
        sent = page.locator('#progress [data-state="sent"] strong')
        if sent.count() and sent.inner_text().strip() == str(len(CLIENTS)):
            break
        assert time.monotonic() < deadline, page.locator("body").inner_text()
        time.sleep(0.5)
    page.locator("#runs tbody tr").first.wait_for()
    assert page.locator("svg").count() >= 1, "no outcome chart on the detail page"
    shoot(page, "04-mailing-detail")

    page.get_by_role("link", name="Attempts log").click()
    page.wait_for_url(re.compile(r"/attempts"))
    rows = page.locator("#attempts tbody tr")
    assert rows.count() == len(CLIENTS)
    for address, _ in CLIENTS:
        assert rows.filter(has_text=address).filter(has_text="sent").count() == 1
    shoot(page, "05-attempts")

    # The placeholders were filled in per client in the emails themselves.
    for address, name in CLIENTS:
        mail = panel.newest_mail(address, after=sent_after)
        assert mail["Subject"] == f"Spring news for {name}"

    visit(page, panel.url("/dashboard"))
    shoot(page, "06-dashboard")
    visit(page, panel.url("/mailings"))
    shoot(page, "07-mailings")

    # -- the layout holds on a phone --------------------------------------------------------
    page.set_viewport_size(PHONE)
    for path, name in (("/", "phone-home"), ("/clients", "phone-clients")):
        visit(page, panel.url(path))
        shoot(page, name)
        assert no_horizontal_overflow(page), f"{path} scrolls sideways on a phone"
    page.set_viewport_size(DESKTOP)

    # -- a manager blocks the user; the open session stops working --------------------------
    manager = browser.new_context(viewport=DESKTOP).new_page()
    manager.set_default_timeout(WAIT_MS)
    log_in(manager, panel, MANAGER)
    visit(manager, panel.url("/manage/users"))
    row = manager.locator("tbody tr", has_text=USER)
    row.get_by_role("button", name="Block").click()
    manager.wait_for_load_state()
    row = manager.locator("tbody tr", has_text=USER)
    row.get_by_text("blocked").wait_for()
    shoot(manager, "08-manager-users")
    visit(manager, mailing_url)  # managers see every mailing, read-only
    assert manager.get_by_role("link", name="Edit").count() == 0
    manager.context.close()

    visit(page, panel.url("/clients"))
    assert re.search(r"/login", page.url), f"a blocked user still sees {page.url}"
    page.get_by_label("Email").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("alert").wait_for()
    assert "/login" in page.url, "a blocked user logged in again"
    page.context.close()

    # -- an editor publishes a post; it appears on the home page and in the blog ------------
    editor = browser.new_context(viewport=DESKTOP).new_page()
    editor.set_default_timeout(WAIT_MS)
    log_in(editor, panel, EDITOR)
    visit(editor, panel.url("/editor/posts/new"))
    editor.get_by_label("Title").fill(POST_TITLE)
    editor.get_by_label("Content").fill(
        "Write for one reader.\n\nKeep the subject short.\n\nSend at the same time each week."
    )
    published = datetime.now(ZoneInfo("Europe/Berlin")) - timedelta(minutes=2)
    editor.get_by_label(re.compile(r"Publication date")).fill(published.strftime("%Y-%m-%dT%H:%M"))
    editor.get_by_role("button", name="Save").click()
    editor.wait_for_load_state()
    visit(editor, panel.url("/editor/posts"))
    post_row = editor.locator("tbody tr", has_text=POST_TITLE)
    post_row.get_by_text("published").wait_for()
    shoot(editor, "09-editor-posts")
    editor.context.close()

    visitor = browser.new_context(viewport=DESKTOP).new_page()
    visitor.set_default_timeout(WAIT_MS)
    visit(visitor, panel.url("/"))
    visitor.get_by_text(POST_TITLE).first.wait_for()
    assert visitor.locator("#total-mailings").inner_text().strip() == "1"
    assert visitor.locator("#unique-clients").inner_text().strip() == str(len(CLIENTS))
    shoot(visitor, "10-home")
    visit(visitor, panel.url("/blog"))
    visitor.get_by_role("link", name=POST_TITLE).first.click()
    visitor.wait_for_url(re.compile(r"/blog/\d+$"))
    visitor.get_by_text("Keep the subject short.").wait_for()
    shoot(visitor, "12-blog-post")
    visit(visitor, panel.url("/blog"))
    shoot(visitor, "11-blog")
    visitor.context.close()

    assert not panel.errors(), panel.log.read_text()

"""Every page of the panel, for every role, on a phone (390x844) and a desktop (1280x800).

Each page must answer, must not scroll sideways (a wide table scrolls inside its own box), and
must keep the Content-Security-Policy convention (no inline style, script or handler). A
full-page screenshot of each goes to artifacts/screenshots/pages/ to be looked at.
"""

from __future__ import annotations

import re
import struct
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from tests.support.browser import ADMIN, EDITOR, MANAGER, SCREENSHOTS, Panel
from tests.support.browser import mailctl_cli as _cli
from tests.support.env import PASSWORD

pytestmark = pytest.mark.browser

USER = "ann@example.com"
EMPTY = "zed@example.com"
LONG_EMAIL = "konstantin.konstantinopolsky-wiedemann@marketing.very-long-company-name.example.org"
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
CLIENTS = [
    ("olga.petrova@example.org", "Olga Petrova"),
    (LONG_EMAIL, "Konstantin Konstantinopolsky-Wiedemann"),
    ("li.wei@example.org", "Li Wei"),
    ("ada@example.org", "Ada Lovelace"),
    ("marie.curie@example.org", "Marie Curie"),
    ("sam@example.org", ""),
    ("jean.dupont@example.org", "Jean Dupont"),
    ("yuki@example.org", "Yuki Tanaka"),
    ("ana.garcia@example.org", "Ana García"),
    ("zoe@example.org", "Zoë Müller"),
]


def _png(path: Path, width: int = 64, height: int = 40) -> None:
    """A small real PNG (a blue gradient) for the post image."""
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 4 % 256, 120, 200))
        for _ in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _id(env: dict[str, str], *args: str, stdin: str = "") -> int:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "mailctl", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"mailctl {' '.join(args)}: {done.stderr}"
    return int(done.stdout.strip().splitlines()[0])


def _older_attempts(mailing_id: int) -> None:
    """Attempts from the last hours (deferred, then sent), so the chart has a history."""
    from mailctl.config import load_settings
    from mailctl.db import make_engine, utcnow
    from mailctl.models import Delivery, DeliveryAttempt

    engine = make_engine(load_settings())
    try:
        with engine.begin() as conn:
            rows = conn.execute(
                select(Delivery.id, Delivery.run_id, Delivery.email).where(
                    Delivery.mailing_id == mailing_id
                )
            ).all()
            now = utcnow()
            values = []
            for hours_ago, status, code in ((5, "deferred", 451), (3, "deferred", 421)):
                for delivery_id, run_id, address in rows[: 4 + hours_ago]:
                    values.append(
                        {
                            "delivery_id": delivery_id,
                            "mailing_id": mailing_id,
                            "run_id": run_id,
                            "email": address,
                            "attempted_at": now - timedelta(hours=hours_ago),
                            "status": status,
                            "smtp_code": code,
                            "response": f"{code} 4.3.0 try again later",
                        }
                    )
            conn.execute(insert(DeliveryAttempt), values)
    finally:
        engine.dispose()


@pytest.fixture
def site(panel: Panel, tmp_path: Path) -> dict[str, Any]:
    """A user with clients, messages and mailings in every state; a user with nothing yet;
    blog posts with and without an image."""
    import os

    env = dict(os.environ)
    as_user = ("--as", USER)
    for address, name in ((USER, "Ann Lee"), (EMPTY, "Zed Zimmer")):
        _cli(env, "user", "add", address, "--name", name, "--password-stdin", stdin=PASSWORD)
    client_ids = [
        _id(env, *as_user, "client", "add", address, "--name", name) for address, name in CLIENTS
    ]
    welcome = _id(
        env,
        *as_user,
        "message",
        "add",
        "--subject",
        "Welcome, {{ client.first_name }}!",
        "--body",
        "Dear {{ client.full_name }},\n\nthank you for subscribing.\n\n"
        "Unsubscribe: {{ unsubscribe_url }}\n",
    )
    digest = _id(
        env,
        *as_user,
        "message",
        "add",
        "--subject",
        "Weekly digest for {{ client.full_name }}",
        "--body",
        "Hello {{ client.first_name }},\n\n  here is what happened this week.\n",
    )
    sent = _id(
        env,
        *as_user,
        "mailing",
        "add",
        "--message",
        str(welcome),
        "--all-clients",
        "--start",
        "now",
    )
    _older_attempts(sent)
    weekly = _id(
        env,
        *as_user,
        "mailing",
        "add",
        "--message",
        str(digest),
        "--client",
        str(client_ids[0]),
        "--client",
        str(client_ids[1]),
        "--every",
        "week",
        "--start",
        "+1d",
        "--end",
        "+90d",
    )
    paused = _id(
        env, *as_user, "mailing", "add", "--message", str(digest), "--all-clients", "--start", "+2h"
    )
    _cli(env, *as_user, "mailing", "disable", str(paused))
    cover = tmp_path / "cover.png"
    _png(cover)
    as_editor = ("--as", EDITOR)
    post = _id(
        env,
        *as_editor,
        "blog",
        "add",
        "--title",
        "Five tips for newsletters people actually read",
        "--content",
        "Write for one reader.\n\nKeep the subject short.\n\nSend at the same time each week.",
        "--image",
        str(cover),
        "--publish-at",
        "now",
    )
    for title in ("Why we built mailctl", "Deliverability without the magic"):
        _id(
            env,
            *as_editor,
            "blog",
            "add",
            "--title",
            title,
            "--content",
            "Text.",
            "--publish-at",
            "now",
        )
    draft = _id(env, *as_editor, "blog", "add", "--title", "A draft", "--content", "Soon.")
    return {
        "client": client_ids[1],
        "message": welcome,
        "sent": sent,
        "weekly": weekly,
        "paused": paused,
        "post": post,
        "draft": draft,
    }


PUBLIC = ["/", "/blog", "/blog/{post}"]
ACCOUNT = ["/account"]
CONTENT = [
    "/dashboard",
    "/clients",
    "/clients/new",
    "/clients/import",
    "/clients/{client}/edit",
    "/messages",
    "/messages/new",
    "/messages/{message}",
    "/messages/{message}/edit",
    "/mailings",
    "/mailings/new",
    "/mailings/{sent}",
    "/mailings/{weekly}",
    "/mailings/{paused}",
    "/mailings/{sent}/edit",
    "/mailings/{sent}/attempts",
]
OVERSIGHT = ["/mailings", "/mailings/{sent}", "/mailings/{sent}/attempts", "/manage/users"]
EDITING = ["/editor/posts", "/editor/posts/new", "/editor/posts/{post}", "/editor/posts/{draft}"]
PAGES = {
    "anonymous": [
        *PUBLIC,
        "/login",
        "/register",
        "/password/forgot",
        "/verify/resend",
        "/no-such-page",
    ],
    "user": [*PUBLIC, *ACCOUNT, *CONTENT],
    "empty-user": ["/dashboard", "/clients", "/messages", "/mailings", "/mailings/new"],
    "manager": [*PUBLIC, *ACCOUNT, *OVERSIGHT],
    "editor": [*PUBLIC, *ACCOUNT, *EDITING],
    "admin": [*PUBLIC, *ACCOUNT, *CONTENT, *OVERSIGHT, *EDITING],
}
LOGINS = {"user": USER, "empty-user": EMPTY, "manager": MANAGER, "editor": EDITOR, "admin": ADMIN}


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "home"


def _log_in(page: Any, panel: Panel, address: str) -> None:
    page.goto(panel.url("/login"))
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    assert "/login" not in page.url, page.locator("body").inner_text()


@pytest.mark.parametrize("size", list(SIZES))
def test_every_page_fits_the_screen(panel: Panel, browser: Any, site, size: str) -> None:
    out = SCREENSHOTS / "pages"
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for role, paths in PAGES.items():
        context = browser.new_context(viewport=SIZES[size])
        page = context.new_page()
        page.set_default_timeout(15_000)
        if role in LOGINS:
            _log_in(page, panel, LOGINS[role])
        for template in dict.fromkeys(paths):
            path = template.format(**site)
            response = page.goto(panel.url(path))
            assert response is not None
            expected = 404 if path == "/no-such-page" else 200
            if response.status != expected:
                problems.append(f"{role} {path}: answered {response.status}")
                continue
            wide = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if wide[0] > wide[1]:
                problems.append(f"{role} {path} at {size}: {wide[0]}px wide in {wide[1]}px")
            inline = page.evaluate(
                """[document.querySelectorAll('[style]').length,
                    document.querySelectorAll('style').length,
                    [...document.querySelectorAll('script')].filter(s => !s.src).length,
                    [...document.querySelectorAll('*')].filter(
                        e => [...e.attributes].some(a => a.name.startsWith('on'))).length]"""
            )
            if any(inline):
                problems.append(f"{role} {path}: inline style/style/script/on*= {inline}")
            # Last: taking a screenshot may itself touch the page's styles.
            name = f"{role}-{_slug(template)}-{size}"
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            # A full-page capture leaves a frame below the first screen blank (Chromium paints
            # only what was in view): each sandboxed message frame is shot on its own too.
            for i, frame in enumerate(page.locator("iframe").all()):
                frame.screenshot(path=str(out / f"{name}-frame{i + 1}.png"))
        context.close()
    assert not problems, "\n".join(problems)
    assert not panel.errors(), panel.errors()


def test_the_menu_opens_on_a_phone_without_javascript(panel: Panel, browser: Any, site) -> None:
    context = browser.new_context(viewport=SIZES["phone"], java_script_enabled=False)
    page = context.new_page()
    _log_in(page, panel, ADMIN)
    page.goto(panel.url("/dashboard"))
    clients = page.get_by_role("link", name="Clients", exact=True)
    assert not clients.is_visible(), "the menu is open before it is asked for"
    nav_height = page.locator("nav").bounding_box()["height"]
    assert nav_height < 80, f"the closed navbar takes {nav_height}px of an 844px screen"
    page.get_by_text("Menu").click()
    clients.wait_for(state="visible")
    page.screenshot(path=str(SCREENSHOTS / "pages" / "admin-menu-open-phone.png"), full_page=True)
    clients.click()
    page.wait_for_url(re.compile(r"/clients$"))

    desktop = browser.new_context(viewport=SIZES["desktop"], java_script_enabled=False)
    wide = desktop.new_page()
    _log_in(wide, panel, ADMIN)
    assert wide.get_by_role("link", name="Clients", exact=True).is_visible()  # always shown
    assert not wide.get_by_text("Menu").is_visible()
    context.close()
    desktop.close()

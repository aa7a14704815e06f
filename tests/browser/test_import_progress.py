"""A big CSV import in a real browser: the upload lands on a progress page that refreshes
itself (no script: a meta refresh) with the rows read, then shows the result table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import ADMIN, Panel
from tests.support.env import PASSWORD

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
ROWS = 40_000  # several seconds of work: past the two seconds the upload waits


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_big_import_shows_progress_then_the_result(
    panel: Panel, browser: Any, shoot: Any, tmp_path: Path, viewport: dict[str, int]
) -> None:
    size = "phone" if viewport is PHONE else "desktop"
    source = tmp_path / "big.csv"
    source.write_text(
        "email,full_name,comment,tags\n"
        + "".join(f"p{i}@example.com,Person {i},,news\n" for i in range(ROWS))
        + "broken,Bad,,\n",
        encoding="utf-8",
    )
    page = browser.new_context(viewport=viewport).new_page()
    page.goto(panel.url("/login"))
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    page.goto(panel.url("/clients/import"))
    page.get_by_label("CSV file").set_input_files(str(source))
    page.get_by_role("button", name="Import").click()
    page.wait_for_url(re.compile(r"/clients/import/[\w-]+$"))
    assert page.get_by_role("heading", name="Importing clients").is_visible()
    assert page.locator("progress#import-bar").is_visible()
    assert "rows read" in page.locator("#import-progress").inner_text()
    shoot(page, f"import-progress-{size}")
    # The page reloads itself until the result is in.
    page.get_by_text(f"Imported {ROWS} clients; 1 row skipped").wait_for(timeout=120_000)
    assert page.locator("#import-errors").get_by_text("invalid email").is_visible()
    shoot(page, f"import-result-{size}")
    assert panel.errors() == []

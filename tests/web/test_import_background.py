"""The panel's client import runs in a background thread: a file that takes a while shows a
progress page that refreshes itself, then the same result as a quick one; only its owner can
see it; the upload's temporary file is gone afterwards."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from mailctl.models import Client
from mailctl.web import imports
from tests.support.procs import wait_for
from tests.support.web import as_role, post_form
from tests.support.world import World

ROWS = 2500  # three batches


def csv_of(rows: int) -> bytes:
    body = "".join(f"bg{i}@example.com,Bg {i},,news,Riga\n" for i in range(rows))
    return f"email,full_name,comment,tags,city\n{body}not-an-email,x,,,\n".encode()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Imports wait for this event before they read the file: a long import, on demand.
    Everything after the wait is the real import."""
    gate = threading.Event()
    real = imports.import_stream

    def waiting(**kw: Any) -> Any:
        assert gate.wait(30)
        return real(**kw)

    monkeypatch.setattr(imports, "import_stream", waiting)
    monkeypatch.setattr(imports, "WAIT_SECONDS", 0.0)
    from mailctl.web.views import clients as views

    monkeypatch.setattr(views, "WAIT_SECONDS", 0.0)
    return gate


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(Client).where(Client.email.like("bg%"))
            ).scalar_one()
        )


def test_a_long_import_shows_progress_then_its_result(
    client: TestClient, new_client: Any, world: World, engine: Engine, held: threading.Event
) -> None:
    as_role(client, world, "owner")
    started = post_form(
        client, "/clients/import", files={"file": ("c.csv", csv_of(ROWS), "text/csv")}
    )
    assert started.status_code == 303
    page = started.headers["location"]
    assert re.fullmatch(r"/clients/import/[\w-]{20,}", page)
    running = client.get(page)
    assert running.status_code == 200
    assert '<meta http-equiv="refresh" content="1">' in running.text
    assert 'id="import-bar"' in running.text and "0% of the file read" in running.text
    # Someone else cannot see it, nor guess it.
    stranger = as_role(new_client(), world, "other")
    assert stranger.get(page).status_code == 404
    assert client.get("/clients/import/not-a-job").status_code == 404
    spooled = list(Path(imports.__file__).parent.glob("mailctl-import-*"))
    assert spooled == []  # uploads wait in the temp directory, not beside the code
    held.set()
    wait_for(lambda: "refresh" not in client.get(page).text, timeout=30)
    done = client.get(page)
    assert done.status_code == 200
    assert f"Imported {ROWS} clients; 1 row skipped" in done.text
    assert re.search(r"<tr><td>2502</td><td[^>]*>invalid email", done.text)
    assert count(engine) == ROWS


def test_a_strict_import_that_fails_in_the_background_keeps_nothing(
    client: TestClient, world: World, engine: Engine, held: threading.Event
) -> None:
    as_role(client, world, "owner")
    started = post_form(
        client,
        "/clients/import",
        {"strict": "1"},
        files={"file": ("c.csv", csv_of(ROWS), "text/csv")},
    )
    page = started.headers["location"]
    assert "All or nothing" in client.get(page).text
    held.set()
    wait_for(lambda: "refresh" not in client.get(page).text, timeout=30)
    done = client.get(page)
    assert done.status_code == 400
    assert f"line {ROWS + 2}: invalid email" in done.text and "nothing imported" in done.text
    assert count(engine) == 0


def test_more_bad_rows_than_the_page_lists(
    client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailctl.services import client_import

    monkeypatch.setattr(client_import, "ERRORS_KEPT", 3)
    as_role(client, world, "owner")
    data = b"email\n" + b"".join(b"bad-%d\n" % i for i in range(5)) + b"ok@example.com\n"
    done = post_form(client, "/clients/import", files={"file": ("c.csv", data, "text/csv")})
    assert done.status_code == 200
    assert "Imported 1 client; 5 rows skipped" in done.text
    assert len(re.findall(r"<tr><td>\d+</td>", done.text)) == 3
    assert "and 2 more bad rows" in done.text

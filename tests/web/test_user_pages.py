"""The user pages end to end: forms, CSV import, previews, mailings sent by the background
worker, the attempts log, the SVG chart, and escaping of everything a user typed."""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from sqlalchemy import func, insert
from sqlalchemy.engine import Engine
from sqlmodel import select
from starlette.testclient import TestClient

from mailctl.config import Settings
from mailctl.db import session_scope, utcnow
from mailctl.models import Client, Delivery, DeliveryAttempt, Mailing, MailingRun, Message
from mailctl.timeutil import to_local
from mailctl.web.chart import localise, outcome_svg
from mailctl.web.state import panel_of
from mailctl.web.worker import BackgroundSender
from tests.support.mail import outbox
from tests.support.procs import wait_for
from tests.support.smtp import Sink
from tests.support.web import as_role, post_form, state_of
from tests.support.world import World

XSS = "<script>alert(1)</script>"


def _ids(engine: Engine, model: Any, **where: Any) -> list[int]:
    with session_scope(engine, readonly=True) as s:
        stmt = select(model.id)
        for name, value in where.items():
            stmt = stmt.where(getattr(model, name) == value)
        return list(s.exec(stmt).all())


def _states(engine: Engine, mailing_id: int) -> dict[str, int]:
    with session_scope(engine, readonly=True) as s:
        rows = s.exec(
            select(Delivery.state, func.count())
            .where(Delivery.mailing_id == mailing_id)
            .group_by(Delivery.state)
        ).all()
        return dict(rows)


def _svg(page: str) -> ET.Element:
    match = re.search(r"<svg.*?</svg>", page, re.S)
    assert match, "no inline SVG"
    return ET.fromstring(match.group(0))


# -- dashboard ------------------------------------------------------------------------------


def test_dashboard_shows_own_figures_and_recent_mailings(client: TestClient, world: World) -> None:
    as_role(client, world, "owner")
    page = client.get("/dashboard").text
    assert 'data-stat="1">1<' in page  # the owner's one mailing, not the other user's
    assert f'href="/mailings/{world.mailings["owner"]}"' in page
    assert f'href="/mailings/{world.mailings["other"]}"' not in page
    as_role(client, world, "manager")
    page = client.get("/dashboard").text
    assert f'data-stat="1">{len(world.mailings)}<' in page  # everyone's
    assert "/mailings/new" not in page
    as_role(client, world, "editor")
    assert "/editor/posts" in client.get("/dashboard").text


# -- clients --------------------------------------------------------------------------------


def test_add_edit_delete_client_through_forms(
    client: TestClient, world: World, engine: Engine
) -> None:
    as_role(client, world, "owner")
    form = client.get("/clients/new")
    assert 'name="csrf_token"' in form.text
    response = post_form(
        client,
        "/clients/new",
        {"email": "New@Example.com", "full_name": "New One", "comment": "hi"},
    )
    assert response.status_code == 303 and response.headers["location"] == "/clients"
    listing = client.get("/clients").text
    assert "New@example.com" in listing and "Added client" in listing
    (new_id,) = _ids(engine, Client, email="New@example.com")

    # Errors come back on the form with what was typed.
    dup = post_form(client, "/clients/new", {"email": "new@example.com", "full_name": "Again"})
    assert dup.status_code == 409
    assert "already exists" in dup.text and 'value="Again"' in dup.text
    bad = post_form(client, "/clients/new", {"email": "not-an-email", "full_name": "X"})
    assert bad.status_code == 400 and "invalid email" in bad.text

    edit = client.get(f"/clients/{new_id}/edit")
    assert 'value="New@example.com"' in edit.text
    response = post_form(
        client,
        f"/clients/{new_id}/edit",
        {"email": "renamed@example.com", "full_name": "Renamed", "comment": ""},
    )
    assert response.status_code == 303
    clash = post_form(
        client,
        f"/clients/{new_id}/edit",
        {"email": "client-of-owner@example.com", "full_name": "Renamed", "comment": ""},
    )
    assert clash.status_code == 409 and "already exists" in clash.text
    with session_scope(engine, readonly=True) as s:
        assert s.get(Client, new_id).full_name == "Renamed"  # type: ignore[union-attr]

    assert post_form(client, f"/clients/{new_id}/delete").status_code == 303
    assert _ids(engine, Client, id=new_id) == []


def test_client_search_paging_and_unsubscribed_state(
    client: TestClient, world: World, engine: Engine
) -> None:
    with session_scope(engine) as s:
        owner_id = world.users["owner"].id
        for i in range(30):
            address = f"bulk{i:02d}@example.com"
            s.add(
                Client(owner_id=owner_id, email=address, email_key=address, full_name=f"Bulk {i}")
            )
        gone = s.get(Client, world.clients["owner"])
        assert gone is not None
        gone.unsubscribed_at = utcnow()
        s.add(gone)
    as_role(client, world, "owner")
    first = client.get("/clients").text
    assert "(31)" in first
    assert first.count("/edit") == 25
    assert "page=2" in first
    second = client.get("/clients?page=2").text
    assert second.count("/edit") == 6
    assert "unsubscribed" in first  # the owner's first client
    found = client.get("/clients?q=BULK0").text
    assert found.count("/edit") == 10 and "(10)" in found
    assert 'value="BULK0"' in found
    assert "client-of-other" not in client.get("/clients?q=client-of").text
    assert "No client matches" in client.get("/clients?q=nobody").text
    assert client.get("/clients?page=nonsense").status_code == 200


def test_csv_import_reports_bad_rows_by_line(
    client: TestClient, world: World, engine: Engine
) -> None:
    as_role(client, world, "owner")
    data = (
        b"email,full_name,comment\n"
        b"one@example.com,One,first\n"
        b"not-an-email,Bad,\n"
        b"client-of-owner@example.com,Dup,\n"
        b"two@example.com,Two\n"
        b"three@example.com,Three,third\n"
    )
    response = post_form(client, "/clients/import", files={"file": ("c.csv", data, "text/csv")})
    assert response.status_code == 200
    text = response.text
    assert "Imported 2 clients; 3 rows skipped" in text
    table = text[text.index('id="import-errors"') :]
    rows = re.findall(r"<tr><td>(\d+)</td><td[^>]*>(.*?)</td></tr>", table, re.S)
    assert [int(line) for line, _ in rows] == [3, 4, 5]
    assert "invalid email" in rows[0][1]
    assert "already exists" in rows[1][1]
    assert "expected 3 fields" in rows[2][1]
    assert _ids(engine, Client, email="one@example.com")
    assert _ids(engine, Client, email="three@example.com")


def test_csv_import_strict_and_broken_files(
    client: TestClient, world: World, engine: Engine
) -> None:
    as_role(client, world, "owner")
    before = len(_ids(engine, Client))
    strict = post_form(
        client,
        "/clients/import",
        {"strict": "1"},
        files={"file": ("c.csv", b"email\nok@example.com\nbad\n", "text/csv")},
    )
    assert strict.status_code == 400 and "nothing imported" in strict.text
    latin = post_form(
        client, "/clients/import", files={"file": ("c.csv", "email\nä@x.de\n".encode("latin-1"))}
    )
    assert latin.status_code == 400 and "not UTF-8" in latin.text
    empty = post_form(client, "/clients/import", files={"file": ("c.csv", b"")})
    assert empty.status_code == 400 and "choose a CSV file" in empty.text
    header = post_form(client, "/clients/import", files={"file": ("c.csv", b"name\nx\n")})
    assert header.status_code == 400 and "header" in header.text
    assert len(_ids(engine, Client)) == before


def test_client_export(client: TestClient, world: World) -> None:
    as_role(client, world, "owner")
    response = client.get("/clients/export.csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines() == [
        "email,full_name,comment,tags",
        "client-of-owner@example.com,Client of owner,,",
    ]


# -- messages -------------------------------------------------------------------------------


def test_messages_add_edit_preview_delete(client: TestClient, world: World, engine: Engine) -> None:
    as_role(client, world, "owner")
    response = post_form(
        client,
        "/messages/new",
        {"subject": "Hi {{ client.first_name }}", "body": "Dear {{ client.full_name }},\nnews."},
    )
    assert response.status_code == 303
    message_id = int(response.headers["location"].rsplit("/", 1)[1])
    page = client.get(response.headers["location"]).text
    assert "Hi Client" in page  # the preview, for the first client
    assert "Dear Client of owner," in page
    assert "Hi {{ client.first_name }}" in page  # the template itself

    bad = post_form(client, "/messages/new", {"subject": "Hi {{ client.age }}", "body": "x"})
    assert bad.status_code == 400 and "placeholder" in bad.text
    assert 'value="Hi {{ client.age }}"' in bad.text
    empty = post_form(client, "/messages/new", {"subject": "", "body": "x"})
    assert empty.status_code == 400 and "subject must not be empty" in empty.text

    response = post_form(
        client, f"/messages/{message_id}/edit", {"subject": "Changed", "body": "New body"}
    )
    assert response.status_code == 303
    with session_scope(engine, readonly=True) as s:
        assert s.get(Message, message_id).subject == "Changed"  # type: ignore[union-attr]
    assert "Changed" in client.get("/messages").text

    # A message in use cannot go; a free one can.
    refused = post_form(client, f"/messages/{world.mailing_messages['owner']}/delete")
    assert refused.status_code == 303
    assert "is used by mailing" in client.get(refused.headers["location"]).text
    assert _ids(engine, Message, id=world.mailing_messages["owner"])
    assert post_form(client, f"/messages/{message_id}/delete").status_code == 303
    assert not _ids(engine, Message, id=message_id)


def test_preview_for_a_chosen_client(client: TestClient, world: World, engine: Engine) -> None:
    with session_scope(engine) as s:
        second = Client(
            owner_id=world.users["owner"].id or 0,
            email="zoe@example.com",
            email_key="zoe@example.com",
            full_name="Zoe Zed",
        )
        s.add(second)
        s.flush()
        second_id = second.id
    as_role(client, world, "owner")
    page = client.get(f"/messages/{world.messages['owner']}?client={second_id}").text
    assert "Hi Zoe Zed" in page
    assert f'<option value="{second_id}" selected>' in page


# -- mailings -------------------------------------------------------------------------------


def _local(dt: Any, tz: str = "Europe/Berlin") -> str:
    return to_local(dt, tz).strftime("%Y-%m-%dT%H:%M")


def test_add_future_mailing_through_form(client: TestClient, world: World, engine: Engine) -> None:
    as_role(client, world, "owner")
    form = client.get(f"/mailings/new?message={world.messages['owner']}").text
    assert 'type="datetime-local"' in form
    assert f'<option value="{world.messages["owner"]}" selected>' in form
    assert "Free other" not in form and "client-of-other" not in form
    response = post_form(
        client,
        "/mailings/new",
        {
            "message_id": str(world.messages["owner"]),
            "client_ids": [str(world.clients["owner"])],
            "start": "2031-03-01T09:30",
            "end": "2031-12-01T09:30",
            "every": "month",
        },
    )
    assert response.status_code == 303, response.text
    mailing_id = int(response.headers["location"].rsplit("/", 1)[1])
    detail = client.get(response.headers["location"])
    assert "starts by itself" in detail.text
    assert "2031-03-01 09:30 CET" in detail.text  # the schedule in the configured zone
    assert "Monthly" in detail.text
    assert 'http-equiv="refresh"' not in detail.text and "refresh" not in detail.headers
    with session_scope(engine, readonly=True) as s:
        mailing = s.get(Mailing, mailing_id)
        assert mailing is not None
        assert mailing.start_at.isoformat() == "2031-03-01T08:30:00+00:00"
        assert mailing.status == "created"


def test_mailing_form_errors_keep_the_values(client: TestClient, world: World) -> None:
    as_role(client, world, "owner")
    base = {"message_id": str(world.messages["owner"]), "client_ids": [str(world.clients["owner"])]}
    cases = [
        ({"start": "2031-03-01T09:30", "end": "2031-02-01T09:30"}, "the end must be after"),
        ({"start": "2020-01-01T09:30", "end": "2020-02-01T09:30"}, "both in the past"),
        ({"start": "yesterday-ish"}, "cannot read time"),
        ({"message_id": ""}, "choose a message"),
        ({"client_ids": []}, "at least one client"),
        ({"every": "hourly"}, "unknown periodicity"),
        ({"message_id": str(world.messages["other"])}, "not found"),
        ({"client_ids": [str(world.clients["other"])]}, "not found"),
    ]
    for change, text in cases:
        response = post_form(client, "/mailings/new", {**base, "every": "once", **change})
        assert response.status_code == 400, change
        assert text in response.text, (change, response.text)
        assert "Free other" not in response.text
    again = post_form(
        client, "/mailings/new", {**base, "start": "2031-03-01T09:30", "end": "2031-02-01T09:30"}
    )
    assert 'value="2031-03-01T09:30"' in again.text


def test_due_mailing_is_sent_at_once_by_the_worker(
    client: TestClient, world: World, engine: Engine, settings: Any
) -> None:
    as_role(client, world, "owner")
    response = post_form(
        client,
        "/mailings/new",
        {
            "message_id": str(world.messages["owner"]),
            "all_clients": "1",
            "start": "",
            "every": "once",
        },
    )
    assert response.status_code == 303
    mailing_id = int(response.headers["location"].rsplit("/", 1)[1])
    assert wait_for(lambda: _states(engine, mailing_id).get("sent") == 1)
    assert state_of(client).sender.wait(timeout=10)
    assert any(
        m["To"].addresses[0].addr_spec == "client-of-owner@example.com" for m in outbox(settings)
    )
    detail = client.get(f"/mailings/{mailing_id}").text
    assert "sending has started" in detail
    assert re.search(r'data-state="sent">.*?<strong>1</strong>', detail)
    assert 'id="runs"' in detail


def test_send_now_runs_in_the_background(
    client: TestClient, world: World, engine: Engine, settings: Any
) -> None:
    with session_scope(engine) as s:
        owner_id = world.users["owner"].id or 0
        for i in range(5):
            address = f"reader{i}@example.com"
            c = Client(owner_id=owner_id, email=address, email_key=address, full_name=f"R {i}")
            s.add(c)
    as_role(client, world, "owner")
    post_form(
        client,
        f"/mailings/{world.mailings['owner']}/edit",
        {
            "message_id": str(world.mailing_messages["owner"]),
            "all_clients": "1",
            "start": "",
            "end": "",
            "every": "day",
        },
    )
    response = post_form(client, f"/mailings/{world.mailings['owner']}/send")
    assert response.status_code == 303
    assert response.headers["location"] == f"/mailings/{world.mailings['owner']}"
    assert wait_for(lambda: _states(engine, world.mailings["owner"]).get("sent") == 6)
    assert state_of(client).sender.wait(timeout=10)
    assert len(outbox(settings)) == 6
    detail = client.get(f"/mailings/{world.mailings['owner']}").text
    assert "Sending has started" in detail
    assert "started" in detail
    assert 'http-equiv="refresh"' not in detail  # nothing left open
    svg = _svg(detail)
    assert svg.tag.endswith("svg")
    # the attempts log shows them
    log = client.get(f"/mailings/{world.mailings['owner']}/attempts").text
    assert len(re.findall(r"<td[^>]*>reader\d+@example\.com</td>", log)) == 5
    csv_text = client.get(f"/mailings/{world.mailings['owner']}/attempts.csv").text
    assert csv_text.splitlines()[0].startswith("attempted_at,run_id,email,status")
    assert len(csv_text.splitlines()) == 7


def test_send_now_refused_when_disabled(client: TestClient, world: World, engine: Engine) -> None:
    as_role(client, world, "owner")
    assert post_form(client, f"/mailings/{world.mailings['owner']}/disable").status_code == 303
    detail = client.get(f"/mailings/{world.mailings['owner']}").text
    assert "created (disabled)" in detail
    assert "disabled" in client.get("/mailings?status=disabled").text
    response = post_form(client, f"/mailings/{world.mailings['owner']}/send")
    assert response.status_code == 303
    assert "enable it first" in client.get(response.headers["location"]).text
    assert _states(engine, world.mailings["owner"]) == {}
    assert state_of(client).sender.submitted == 0  # nothing was queued


def test_progress_page_reloads_while_rows_are_open(
    client: TestClient, world: World, engine: Engine
) -> None:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            insert(MailingRun).values(
                id=50,
                mailing_id=world.mailings["owner"],
                scheduled_at=now,
                started_at=now,
                recipients=1,
            )
        )
        conn.execute(
            insert(Delivery).values(
                run_id=50,
                mailing_id=world.mailings["owner"],
                client_id=world.clients["owner"],
                email="client-of-owner@example.com",
                state="pending",
            )
        )
    as_role(client, world, "owner")
    busy = client.get(f"/mailings/{world.mailings['owner']}")
    assert '<meta http-equiv="refresh" content="3">' in busy.text
    assert busy.headers["refresh"] == "3"
    assert re.search(r'data-state="pending">.*?<strong>1</strong>', busy.text)
    with engine.begin() as conn:
        conn.execute(Delivery.__table__.update().values(state="sent"))  # type: ignore[attr-defined]
    done = client.get(f"/mailings/{world.mailings['owner']}")
    assert 'http-equiv="refresh"' not in done.text and "refresh" not in done.headers
    assert re.search(r'data-state="sent">.*?<strong>1</strong>', done.text)


def test_saving_the_edit_form_unchanged_is_accepted(
    client: TestClient, world: World, engine: Engine
) -> None:
    # Created, disabled, its "now" start (with seconds) passed an hour ago: the form shows
    # the start to the minute, and saving it as shown changes nothing.
    past = utcnow() - timedelta(hours=1, seconds=17)
    with session_scope(engine) as s:
        mailing = s.get(Mailing, world.mailings["owner"])
        assert mailing is not None
        mailing.start_at, mailing.next_run_at, mailing.is_enabled = past, past, False
        s.add(mailing)
    as_role(client, world, "owner")
    form = client.get(f"/mailings/{world.mailings['owner']}/edit").text
    fields = {
        name: re.search(rf'name="{name}"[^>]*value="([^"]*)"', form).group(1)  # type: ignore[union-attr]
        for name in ("start", "end")
    }
    assert fields["start"] == _local(past)
    response = post_form(
        client,
        f"/mailings/{world.mailings['owner']}/edit",
        {
            "message_id": str(world.mailing_messages["owner"]),
            "client_ids": [str(world.clients["owner"])],
            "every": "day",
            **fields,
        },
    )
    assert response.status_code == 303, response.text
    with session_scope(engine, readonly=True) as s:
        mailing = s.get(Mailing, world.mailings["owner"])
        assert mailing is not None
        assert (mailing.start_at, mailing.next_run_at, mailing.status) == (past, past, "created")


def test_edit_mailing_keeps_a_passed_start(
    client: TestClient, world: World, engine: Engine
) -> None:
    # Started a while ago: saving the form unchanged must not complain that the start passed.
    past = utcnow() - timedelta(days=3)
    with session_scope(engine) as s:
        mailing = s.get(Mailing, world.mailings["owner"])
        assert mailing is not None
        mailing.start_at, mailing.status = past, "started"
        mailing.last_run_at, mailing.next_run_at = past, past + timedelta(days=7)
        s.add(mailing)
    as_role(client, world, "owner")
    form = client.get(f"/mailings/{world.mailings['owner']}/edit").text
    assert f'value="{_local(past)}"' in form
    response = post_form(
        client,
        f"/mailings/{world.mailings['owner']}/edit",
        {
            "message_id": str(world.mailing_messages["owner"]),
            "client_ids": [str(world.clients["owner"])],
            "start": _local(past),
            "end": "2031-01-01T00:00",
            "every": "day",
        },
    )
    assert response.status_code == 303, response.text
    with session_scope(engine, readonly=True) as s:
        mailing = s.get(Mailing, world.mailings["owner"])
        assert mailing is not None
        assert mailing.every == "day" and mailing.end_at is not None
    bad = post_form(
        client,
        f"/mailings/{world.mailings['owner']}/edit",
        {
            "message_id": str(world.mailing_messages["owner"]),
            "client_ids": [str(world.clients["owner"])],
            "start": _local(past),
            "end": "2020-01-01T00:00",
            "every": "day",
        },
    )
    assert bad.status_code == 400 and "end" in bad.text


def test_manager_disables_and_enables_from_the_list(
    client: TestClient, world: World, engine: Engine
) -> None:
    as_role(client, world, "manager")
    response = post_form(
        client, f"/mailings/{world.mailings['other']}/disable", {"next": "/mailings"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/mailings"
    page = client.get("/mailings").text
    assert "created (disabled)" in page
    assert post_form(client, f"/mailings/{world.mailings['other']}/enable").status_code == 303
    # an outside `next` is never followed
    response = post_form(
        client, f"/mailings/{world.mailings['other']}/disable", {"next": "https://evil.example/"}
    )
    assert response.headers["location"] == "/dashboard"
    refused = post_form(client, f"/mailings/{world.mailings['other']}/edit", {"every": "day"})
    assert refused.status_code == 403


def test_mailing_list_status_filter_and_paging(
    client: TestClient, world: World, engine: Engine
) -> None:
    with session_scope(engine) as s:
        for i in range(30):
            start = utcnow() + timedelta(days=2 + i)
            s.add(
                Mailing(
                    owner_id=world.users["owner"].id or 0,
                    message_id=world.mailing_messages["owner"],
                    start_at=start,
                    next_run_at=start,
                    status="finished" if i % 10 == 0 else "created",
                )
            )
    as_role(client, world, "owner")
    first = client.get("/mailings").text
    assert len(_id_cells(first)) == 25
    assert "Next &raquo;" in first and "page=2" in first
    second = client.get("/mailings?page=2").text
    assert len(_id_cells(second)) == 6
    finished = client.get("/mailings?status=finished").text
    assert len(_id_cells(finished)) == 3
    assert client.get("/mailings?status=bogus").status_code == 400


# -- attempts log ---------------------------------------------------------------------------


def _fill_log(engine: Engine, mailing_id: int, n: int) -> None:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            insert(MailingRun).values(
                id=70, mailing_id=mailing_id, scheduled_at=now, started_at=now, recipients=1
            )
        )
        delivery = conn.execute(
            insert(Delivery).values(
                run_id=70,
                mailing_id=mailing_id,
                client_id=None,
                email="x@example.com",
                state="sent",
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(DeliveryAttempt),
            [
                {
                    "delivery_id": delivery,
                    "mailing_id": mailing_id,
                    "run_id": 70,
                    "email": f"r{i:03d}@example.com",
                    "attempted_at": now - timedelta(minutes=n - i),
                    "status": "failed" if i % 4 == 0 else "sent",
                    "smtp_code": 550 if i % 4 == 0 else 250,
                    "response": "550 no such user" if i % 4 == 0 else "250 ok",
                }
                for i in range(n)
            ],
        )


def _emails(page: str) -> list[str]:
    return re.findall(r"<td[^>]*>(r\d{3}@example\.com)</td>", page)


def _id_cells(page: str) -> list[str]:
    """The mailings list's rows, by the cell that links each mailing by its id."""
    return re.findall(r'<td[^>]*><a href="/mailings/(\d+)">\1</a></td>', page)


def _link(page: str, rel: str) -> str | None:
    match = re.search(rf'rel="{rel}" href="([^"]+)"', page)
    return unescape(match.group(1)) if match else None


def test_attempts_log_pages_and_filters(client: TestClient, world: World, engine: Engine) -> None:
    _fill_log(engine, world.mailings["owner"], 120)
    as_role(client, world, "owner")
    url = f"/mailings/{world.mailings['owner']}/attempts"
    first = client.get(url).text
    assert "(120)" in first and "Page 1 of 3" in first
    page1 = _emails(first)
    assert page1[:2] == ["r119@example.com", "r118@example.com"] and len(page1) == 50
    older = _link(first, "next")
    assert older is not None and "before=" in older
    second = client.get(older).text
    page2 = _emails(second)
    assert page2[0] == "r069@example.com" and len(page2) == 50 and "Page 2 of 3" in second
    third = client.get(_link(second, "next")).text  # type: ignore[arg-type]
    assert len(_emails(third)) == 20 and _emails(third)[-1] == "r000@example.com"
    assert _link(third, "next") is None
    back = client.get(_link(third, "prev")).text  # type: ignore[arg-type]
    assert _emails(back) == page2
    # a plain ?page=N link works by offset, in the same order
    assert _emails(client.get(f"{url}?page=2").text) == page2
    assert _emails(client.get(f"{url}?page=9").text) == []
    # the status filter, kept across pages
    failed = client.get(f"{url}?status=failed").text
    assert "(30)" in failed and len(_emails(failed)) == 30
    assert all(int(e[1:4]) % 4 == 0 for e in _emails(failed))
    assert "550 no such user" in failed
    assert client.get(f"{url}?status=nonsense").status_code == 400
    # a broken cursor is the first page, not an error
    assert _emails(client.get(f"{url}?before=garbage").text) == page1


def test_attempts_pager_keeps_status(client: TestClient, world: World, engine: Engine) -> None:
    _fill_log(engine, world.mailings["owner"], 240)
    as_role(client, world, "owner")
    first = client.get(f"/mailings/{world.mailings['owner']}/attempts?status=failed").text
    older = _link(first, "next")
    assert older is not None and "status=failed" in older
    assert all(int(e[1:4]) % 4 == 0 for e in _emails(client.get(older).text))


# -- chart ----------------------------------------------------------------------------------


def test_chart_is_valid_svg_with_a_legend() -> None:
    series = [
        ("2030-01-01 10:00", {"sent": 5, "failed": 1, "deferred": 0, "unknown": 0, "skipped": 0}),
        ("2030-01-01 11:00", {"sent": 2, "failed": 0, "deferred": 3, "unknown": 1, "skipped": 1}),
    ]
    svg = ET.fromstring(str(outcome_svg(series)))
    ns = "{http://www.w3.org/2000/svg}"
    assert svg.tag == f"{ns}svg"
    texts = [t.text for t in svg.iter(f"{ns}text")]
    for status in ("sent", "failed", "deferred", "unknown", "skipped"):
        assert status in texts  # the legend
    assert "2030-01-01 10:00" in texts
    bars = [r for r in svg.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    assert len(bars) == 6  # one segment per non-zero count
    heights = {r.find(f"{ns}title").text: float(r.get("height")) for r in bars}  # type: ignore[union-attr,arg-type]
    assert heights["2030-01-01 10:00: 5 sent"] > heights["2030-01-01 10:00: 1 failed"]


def test_chart_escapes_text_and_handles_no_data() -> None:
    hostile = [(XSS + ' & "q"', {"sent": 1, "<b>odd</b>": 2})]
    markup = str(outcome_svg(hostile, title=XSS))
    assert "<script>" not in markup and "<b>" not in markup
    svg = ET.fromstring(markup)  # still well-formed XML
    texts = "".join(svg.itertext())
    assert XSS in texts and "<b>odd</b>" in texts
    empty = ET.fromstring(str(outcome_svg([])))
    assert "No attempts yet" in "".join(empty.itertext())


def test_chart_labels_in_local_time() -> None:
    series = [("2030-07-01 10:00", {"sent": 1}), ("2030-07-02", {"sent": 1})]
    assert [label for label, _ in localise(series, "Europe/Berlin")] == [
        "2030-07-01 12:00",
        "2030-07-02",
    ]


def test_chart_on_the_detail_page(client: TestClient, world: World, engine: Engine) -> None:
    _fill_log(engine, world.mailings["owner"], 40)
    as_role(client, world, "owner")
    svg = _svg(client.get(f"/mailings/{world.mailings['owner']}").text)
    ns = "{http://www.w3.org/2000/svg}"
    titles = [t.text or "" for t in svg.iter(f"{ns}title")]
    assert sum(int(t.split(": ")[1].split()[0]) for t in titles if ": " in t) == 40


# -- escaping -------------------------------------------------------------------------------


def test_script_in_user_input_is_escaped_everywhere(
    client: TestClient, world: World, engine: Engine
) -> None:
    as_role(client, world, "owner")
    assert (
        post_form(
            client,
            "/clients/new",
            {"email": "x@example.com", "full_name": XSS, "comment": XSS},
        ).status_code
        == 303
    )
    response = post_form(
        client,
        "/messages/new",
        # Plain text: its preview is the body itself, shown in the page (escaped); an HTML
        # part is only ever shown in a sandboxed frame (tests/newsletters).
        {"subject": XSS, "body": XSS + " {{ client.full_name }}", "format": "text"},
    )
    assert response.status_code == 303
    message_id = int(response.headers["location"].rsplit("/", 1)[1])
    (client_id,) = _ids(engine, Client, email="x@example.com")
    response = post_form(
        client,
        "/mailings/new",
        {
            "message_id": str(message_id),
            "client_ids": [str(client_id)],
            "start": "2031-01-01T10:00",
        },
    )
    assert response.status_code == 303
    mailing_id = int(response.headers["location"].rsplit("/", 1)[1])
    # an error page that echoes input
    bad = post_form(client, "/clients/new", {"email": XSS, "full_name": XSS})
    pages = {
        "/clients": client.get("/clients").text,
        "/clients?q": client.get("/clients", params={"q": XSS}).text,
        "edit client": client.get(f"/clients/{client_id}/edit").text,
        "/messages": client.get("/messages").text,
        "message": client.get(f"/messages/{message_id}?client={client_id}").text,
        "edit message": client.get(f"/messages/{message_id}/edit").text,
        "/mailings": client.get("/mailings").text,
        "mailing": client.get(f"/mailings/{mailing_id}").text,
        "edit mailing": client.get(f"/mailings/{mailing_id}/edit").text,
        "new mailing": client.get("/mailings/new").text,
        "bad client form": bad.text,
    }
    for name, page in pages.items():
        assert "<script>" not in page, name
        assert "&lt;script&gt;" in page, name
    assert f"{'&lt;script&gt;alert(1)&lt;/script&gt;'} Client" not in pages["message"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;script&gt;" in pages["message"]  # preview


def test_script_in_log_and_last_error_is_escaped(
    client: TestClient, world: World, engine: Engine
) -> None:
    _fill_log(engine, world.mailings["owner"], 2)
    with engine.begin() as conn:
        conn.execute(DeliveryAttempt.__table__.update().values(response=XSS))  # type: ignore[attr-defined]
        conn.execute(Mailing.__table__.update().values(last_error=XSS))  # type: ignore[attr-defined]
    as_role(client, world, "owner")
    for url in (
        f"/mailings/{world.mailings['owner']}",
        f"/mailings/{world.mailings['owner']}/attempts",
    ):
        page = client.get(url).text
        assert "<script>" not in page and "&lt;script&gt;" in page


# -- the background worker ------------------------------------------------------------------


def test_worker_joins_a_second_click_to_the_queued_pass(
    engine: Engine,
    world: World,
    start_sink: Callable[..., Sink],
    smtp_settings: Callable[..., Settings],
) -> None:
    gate = threading.Event()
    sink = start_sink(gate=gate)
    settings = smtp_settings(sink.port, smtp_timeout=60, delivery_attempt_deadline_seconds=120)
    busy_id, busy_emails = world.mailing(1)
    queued_id, queued_emails = world.mailing(2)
    worker = BackgroundSender(engine, settings, threads=1)
    try:
        running = worker.submit(busy_id)
        assert running is not None
        # The only thread is mid-message (the sink holds the reply): the next passes queue.
        assert sink.handler.arrived.wait(30), "the first pass never reached the mail server"
        first = worker.submit(queued_id)
        second = worker.submit(queued_id)
        assert first is not None and second is first  # the second click joined the queued pass
        assert worker.submitted == 2
        # A pass already running is not joined (it may be past the rows a click adds).
        again = worker.submit(busy_id)
        assert again is not None and again is not running
        assert worker.submitted == 3 and worker.busy()
        gate.set()
        assert worker.wait(timeout=60)
        summaries = [f.result() for f in (running, first, again)]
    finally:
        gate.set()
        worker.shutdown()
    assert [s.sent if s else None for s in summaries] == [1, 2, 0]  # the last found nothing
    assert sink.handler.counts() == {e: 1 for e in busy_emails + queued_emails}
    assert worker.submit(queued_id) is None  # refused once stopped
    assert not worker.busy()


def test_app_shutdown_stops_the_worker(settings: Any, engine: Engine, world: World) -> None:
    from mailctl.web.app import create_app
    from tests.support.web import logged_in

    app = create_app(settings)
    with TestClient(app, follow_redirects=False) as browser:
        logged_in(browser, "owner@example.com")
        post_form(browser, f"/mailings/{world.mailings['owner']}/send")
        worker = panel_of(app).sender
    assert worker.submit(world.mailings["owner"]) is None
    assert not worker.busy()


def test_a_body_from_the_form_is_kept_as_written(
    client: TestClient, world: World, engine: Engine
) -> None:
    """A browser sends CRLF: stored as LF, indents, blank lines and the final newline kept,
    and the edit form gives it back intact (a textarea drops one leading newline)."""
    as_role(client, world, "owner")
    body = "\r\n  indented {{ client.full_name }}\r\n\r\n\tTabbed\r\n"
    response = post_form(client, "/messages/new", {"subject": "Kept", "body": body})
    assert response.status_code == 303
    message_id = int(response.headers["location"].rsplit("/", 1)[1])
    with session_scope(engine, readonly=True) as s:
        stored = s.get(Message, message_id)
        assert stored is not None
        assert stored.body == "\n  indented {{ client.full_name }}\n\n\tTabbed\n"
    form = client.get(f"/messages/{message_id}/edit").text
    assert 'name="body" rows="14" required>\n\n  indented {{ client.full_name }}\n' in form


def test_a_start_that_has_passed_is_sent_at_once_from_the_panel(
    client: TestClient, world: World, engine: Engine, settings: Any
) -> None:
    as_role(client, world, "owner")
    now_local = to_local(utcnow(), "Europe/Berlin").replace(tzinfo=None)
    form = {
        "message_id": str(world.messages["owner"]),
        "all_clients": "1",
        "every": "once",
        "start": (now_local - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "end": (now_local + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
    }
    response = post_form(client, "/mailings/new", form)
    assert response.status_code == 303, response.text
    mailing_id = int(response.headers["location"].rsplit("/", 1)[1])
    assert wait_for(lambda: _states(engine, mailing_id).get("sent") == 1)
    assert state_of(client).sender.wait(timeout=10)
    assert [m["To"].addresses[0].addr_spec for m in outbox(settings)] == [
        "client-of-owner@example.com"
    ]

    both_past = form | {"end": (now_local - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")}
    refused = post_form(client, "/mailings/new", both_past)
    assert refused.status_code == 400
    assert "the start and the end are both in the past" in refused.text


@pytest.mark.parametrize(
    ("most", "top", "step"),
    [(1, 1, 1), (3, 3, 1), (7, 8, 2), (10, 10, 2), (12, 15, 5), (47, 50, 10), (101, 150, 50)],
)
def test_chart_ticks_are_round_numbers(most: int, top: int, step: int) -> None:
    from mailctl.web.chart import axis

    assert axis(most) == (top, step)
    for compact in (False, True):
        svg = ET.fromstring(
            str(outcome_svg([("2030-01-01 10:00", {"sent": most})], compact=compact))
        )
        ns = "{http://www.w3.org/2000/svg}"
        ticks = [int(t.text) for t in svg.iter(f"{ns}text") if (t.text or "").isdigit()]
        assert ticks == list(range(0, top + 1, step))  # 0, 2, 4, 6, 8, 10, never 0, 2, 5, 7


def test_the_compact_chart_is_drawn_at_a_phones_scale() -> None:
    series = [(f"2030-01-0{d} 10:00", {"sent": d, "deferred": 1}) for d in range(1, 8)]
    wide = ET.fromstring(str(outcome_svg(series)))
    compact = ET.fromstring(str(outcome_svg(series, compact=True)))
    assert compact.get("viewBox") == "0 0 340 250" and compact.get("font-size") == "12"
    assert wide.get("viewBox") == "0 0 720 260"
    ns = "{http://www.w3.org/2000/svg}"
    labels = [t.text for t in compact.iter(f"{ns}text") if "10:00" in (t.text or "")]
    assert labels and all(not label.startswith("2030") for label in labels)  # no year
    assert len(labels) <= 3  # a phone gets a few labels it can read, not seven squeezed ones


def test_no_warning_on_a_mailing_whose_every_recipient_got_it(
    client: TestClient, world: World, engine: Engine
) -> None:
    """A deferral that a later retry got through is history; a failure is not."""
    _fill_log(engine, world.mailings["owner"], 8)  # failures logged, but the delivery ended `sent`
    as_role(client, world, "owner")
    page = client.get(f"/mailings/{world.mailings['owner']}").text
    assert "Needs attention" not in page and "alert-warning" not in page
    with engine.begin() as conn:
        conn.execute(Delivery.__table__.update().values(state="failed"))  # type: ignore[attr-defined]
    page = client.get(f"/mailings/{world.mailings['owner']}").text
    assert "Needs attention" in page and "550 no such user" in page


def test_long_addresses_may_wrap_at_dots_and_before_the_at_sign() -> None:
    from mailctl.web.pages import breakable

    assert str(breakable("ann@example.com")) == "ann@example.com"  # fits any line
    long = "konstantin.k-w@marketing.example.org"
    assert str(breakable(long)) == ("konstantin.<wbr>k-<wbr>w<wbr>@marketing.<wbr>example.<wbr>org")
    assert str(breakable('<b>"x"</b>.long-enough-to-break@example.org')).startswith("&lt;b&gt;")


def test_the_dashboard_guides_a_new_account_to_its_first_mailing(
    client: TestClient, world: World, engine: Engine, make_user: Any
) -> None:
    from tests.support.web import logged_in

    newcomer = make_user("user", email="newcomer@example.com")
    logged_in(client, newcomer.email)
    page = client.get("/dashboard").text
    assert 'id="first-steps"' in page
    assert page.count('class="done"') == 0
    assert 'href="/clients/new"' in page and 'href="/messages/new"' in page
    post_form(client, "/clients/new", {"email": "c@example.com", "full_name": "C"})
    page = client.get("/dashboard").text
    assert page.count('class="done"') == 1 and "1 client so far" in page
    as_role(client, world, "owner")  # has clients, messages and mailings: no guide
    assert 'id="first-steps"' not in client.get("/dashboard").text


def test_a_new_mailing_needs_a_message_and_clients_first(
    client: TestClient, make_user: Any
) -> None:
    from tests.support.web import logged_in

    logged_in(client, make_user("user", email="fresh@example.com").email)
    page = client.get("/mailings/new").text
    assert 'id="needs-first"' in page and "you have neither yet" in page
    assert '<form method="post" action="/mailings/new"' not in page

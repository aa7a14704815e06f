"""The REST API as a client sees it: JSON in and out, field names of the CLI, 201 with the id,
problem+json errors with the field at fault, 401 without a valid key (a session cookie never
counts), 403 for a read-only key's writes, 429 with Retry-After past the rate limit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from mailctl.db import session_scope, utcnow
from mailctl.models import Client, Mailing
from tests.api.conftest import bearer
from tests.support.web import logged_in
from tests.support.world import World

PROBLEM = "application/problem+json"


def _problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body  # type: ignore[no-any-return]


@pytest.fixture
def owner(world: World, make_key) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return bearer(make_key(world.users["owner"].id))


def test_clients_round_trip_with_cursor_paging_and_search(client: TestClient, owner) -> None:  # type: ignore[no-untyped-def]
    made = client.post(
        "/api/v1/clients",
        json={
            "email": "ann@example.com",
            "full_name": "Ann Lee",
            "comment": "from the shop",
            "tags": ["news", "vip"],
        },
        headers=owner,
    )
    assert made.status_code == 201, made.text
    ann = made.json()
    assert ann["id"] > 0 and ann["email"] == "ann@example.com" and ann["tags"] == ["news", "vip"]
    for i in range(7):
        assert (
            client.post(
                "/api/v1/clients", json={"email": f"p{i}@example.com"}, headers=owner
            ).status_code
            == 201
        )
    seen, cursor = [], None
    while True:
        page = client.get(
            "/api/v1/clients",
            params={"limit": 3, **({"cursor": cursor} if cursor else {})},
            headers=owner,
        ).json()
        seen += [c["email"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 9  # the world's own client, Ann and seven more
    found = client.get("/api/v1/clients", params={"q": "ANN LEE"}, headers=owner).json()
    assert [c["email"] for c in found["items"]] == ["ann@example.com"]
    tagged = client.get("/api/v1/clients", params={"tag": "vip"}, headers=owner).json()
    assert [c["id"] for c in tagged["items"]] == [ann["id"]]
    changed = client.patch(
        f"/api/v1/clients/{ann['id']}",
        json={"full_name": "Ann B. Lee", "tags": ["news"]},
        headers=owner,
    )
    assert changed.status_code == 200 and changed.json()["full_name"] == "Ann B. Lee"
    assert changed.json()["tags"] == ["news"] and changed.json()["comment"] == "from the shop"
    assert client.get(f"/api/v1/clients/{ann['id']}", headers=owner).json() == changed.json()
    assert client.delete(f"/api/v1/clients/{ann['id']}", headers=owner).status_code == 204
    _problem(client.get(f"/api/v1/clients/{ann['id']}", headers=owner), 404)
    _problem(client.get("/api/v1/clients", params={"cursor": "nonsense"}, headers=owner), 400)


def test_bulk_import_reports_bad_rows_by_index(client: TestClient, owner) -> None:  # type: ignore[no-untyped-def]
    rows = [
        {"email": "a@example.com", "tags": ["shop"], "comment": "line one\nline two"},
        {"email": "not an address"},
        {"email": "A@example.com"},  # the same address
        {"email": "c@example.com", "full_name": "=cmd()", "tags": ["shop"]},
    ]
    answer = client.post("/api/v1/clients/import", json={"clients": rows}, headers=owner)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["added"] == 2 and len(report["ids"]) == 2
    assert [e["index"] for e in report["errors"]] == [1, 2]
    assert "already exists" in report["errors"][1]["detail"]
    c = client.get(f"/api/v1/clients/{report['ids'][1]}", headers=owner).json()
    assert c["full_name"] == "=cmd()" and c["tags"] == ["shop"]  # stored as sent
    a = client.get(f"/api/v1/clients/{report['ids'][0]}", headers=owner).json()
    assert a["comment"] == "line one\nline two"
    strict = client.post(
        "/api/v1/clients/import",
        json={"clients": [{"email": "d@example.com"}, {"email": "bad"}], "strict": True},
        headers=owner,
    )
    assert "clients.1" in _problem(strict, 400)["detail"]
    assert (
        client.get("/api/v1/clients", params={"q": "d@example"}, headers=owner).json()["items"]
        == []
    )


def test_validation_errors_name_the_field(client: TestClient, owner) -> None:  # type: ignore[no-untyped-def]
    missing = _problem(client.post("/api/v1/clients", json={"full_name": "X"}, headers=owner), 422)
    assert missing["field"] == "email"
    typo = _problem(
        client.post(
            "/api/v1/clients", json={"email": "a@example.com", "fullname": "X"}, headers=owner
        ),
        422,
    )
    assert typo["errors"][0]["field"] == "fullname"
    bad = _problem(client.post("/api/v1/clients", json={"email": "nope"}, headers=owner), 400)
    assert bad["field"] == "email" and "invalid email" in bad["detail"]
    long = _problem(
        client.post(
            "/api/v1/clients",
            json={"email": "a@example.com", "full_name": "x" * 201},
            headers=owner,
        ),
        422,
    )
    assert long["field"] == "full_name"
    made = client.post("/api/v1/clients", json={"email": "n@example.com"}, headers=owner).json()
    null = _problem(
        client.patch(f"/api/v1/clients/{made['id']}", json={"email": None}, headers=owner), 422
    )
    assert null["field"] == "email" and "may not be null" in null["errors"][0]["detail"]
    assert client.get(f"/api/v1/clients/{made['id']}", headers=owner).json()["email"] == (
        "n@example.com"
    )
    when = _problem(
        client.post(
            "/api/v1/mailings",
            json={"message_id": 1, "all_clients": True, "start": "soon"},
            headers=owner,
        ),
        400,
    )
    assert when["field"] == "start"
    assert _problem(
        client.post(
            "/api/v1/clients",
            content=b"{not json",
            headers={**owner, "content-type": "application/json"},
        ),
        400,
    )["detail"].startswith("the body is not valid JSON")
    _problem(
        client.post(
            "/api/v1/clients",
            content=b"email=x",
            headers={**owner, "content-type": "application/x-www-form-urlencoded"},
        ),
        415,
    )
    _problem(client.post("/api/v1/clients", json=["a"], headers=owner), 422)
    _problem(client.post("/api/v1/clients", content=b"x" * 2_000_001, headers=owner), 413)
    _problem(client.get("/api/v1/nothing-here", headers=owner), 404)
    _problem(client.put("/api/v1/clients", headers=owner), 405)


def test_a_shop_starts_a_mailing_with_one_call(client: TestClient, owner, world: World) -> None:  # type: ignore[no-untyped-def]
    message = world.messages["owner"]
    made = client.post(
        "/api/v1/mailings",
        json={"message_id": message, "client_ids": [world.clients["owner"]], "start": "now"},
        headers=owner,
    )
    assert made.status_code == 201, made.text
    mailing = made.json()
    assert mailing["audience"] == "clients" and mailing["client_ids"] == [world.clients["owner"]]
    from tests.support.web import state_of

    assert state_of(client).sender.wait(30)
    report = client.get(f"/api/v1/mailings/{mailing['id']}/report", headers=owner).json()
    assert report["counts"]["sent"] == 1 and report["runs"] == 1
    attempts = client.get(f"/api/v1/mailings/{mailing['id']}/attempts", headers=owner).json()
    assert [a["email"] for a in attempts["items"]] == ["client-of-owner@example.com"]
    assert attempts["items"][0]["status"] == "sent" and attempts["older"] is None
    runs = client.get(f"/api/v1/mailings/{mailing['id']}/runs", headers=owner).json()
    assert runs[0]["counts"] == {"sent": 1}


def test_mailing_lifecycle(client: TestClient, owner, world: World) -> None:  # type: ignore[no-untyped-def]
    ml = world.mailings["owner"]
    later = (utcnow() + timedelta(days=3)).isoformat()
    changed = client.patch(
        f"/api/v1/mailings/{ml}",
        json={"every": "week", "start": later, "end": "+30d"},
        headers=owner,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["every"] == "week" and changed.json()["end"] is not None
    cleared = client.patch(f"/api/v1/mailings/{ml}", json={"end": ""}, headers=owner).json()
    assert cleared["end"] is None
    assert (
        client.post(f"/api/v1/mailings/{ml}/disable", headers=owner).json()["status"] == "disabled"
    )
    _problem(client.post(f"/api/v1/mailings/{ml}/send", headers=owner), 400)  # disabled
    assert client.post(f"/api/v1/mailings/{ml}/enable", headers=owner).json()["is_enabled"]
    sent = client.post(f"/api/v1/mailings/{ml}/send", headers=owner)
    assert sent.status_code == 202 and sent.json() == {"mailing_id": ml, "queued": True}
    from tests.support.web import state_of

    assert state_of(client).sender.wait(30)
    listed = client.get("/api/v1/mailings", headers=owner).json()
    assert [m["id"] for m in listed] == [ml]
    assert client.delete(f"/api/v1/mailings/{ml}", headers=owner).status_code == 204
    with session_scope(state_of(client).engine) as s:
        assert s.get(Mailing, ml) is None


def test_no_valid_key_is_401_and_a_session_cookie_never_counts(
    client: TestClient, world: World, make_key, engine
) -> None:  # type: ignore[no-untyped-def]
    for headers in ({}, {"Authorization": "Basic b3duZXI6eA=="}, bearer("mk_x_y"), bearer("")):
        body = _problem(client.get("/api/v1/clients", headers=headers), 401)
        assert "API key" in body["detail"]
    response = client.get("/api/v1/clients")
    assert response.headers["www-authenticate"].startswith("Bearer")
    logged_in(client, "owner@example.com")  # a browser session of the owner
    _problem(client.get("/api/v1/clients"), 401)
    _problem(client.post("/api/v1/clients", json={"email": "x@example.com"}), 401)
    with session_scope(engine) as s:
        assert s.exec(select(Client).where(Client.email == "x@example.com")).first() is None
    assert "set-cookie" not in response.headers


def test_a_read_only_key_reads_and_never_writes(client: TestClient, world: World, make_key) -> None:  # type: ignore[no-untyped-def]
    read = bearer(make_key(world.users["owner"].id, "read"))
    assert client.get("/api/v1/clients", headers=read).status_code == 200
    assert client.get("/api/v1/me", headers=read).json()["key_scope"] == "read"
    body = _problem(
        client.post("/api/v1/clients", json={"email": "x@example.com"}, headers=read), 403
    )
    assert "read-only" in body["detail"]
    _problem(client.delete(f"/api/v1/clients/{world.clients['owner']}", headers=read), 403)


def test_past_the_rate_limit_429_with_retry_after(
    world: World, make_key, settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MAILCTL_API_RATE_LIMIT", "3")
    monkeypatch.setenv("MAILCTL_API_RATE_WINDOW_SECONDS", "3600")
    from mailctl.config import load_settings
    from mailctl.web.app import create_app

    owner = bearer(make_key(world.users["owner"].id))
    other = bearer(make_key(world.users["other"].id))
    with TestClient(create_app(load_settings())) as c:
        for _ in range(3):
            assert c.get("/api/v1/me", headers=owner).status_code == 200
        limited = c.get("/api/v1/me", headers=owner)
        body = _problem(limited, 429)
        assert 1 <= int(limited.headers["retry-after"]) <= 3600 and "try again" in body["detail"]
        assert c.get("/api/v1/me", headers=other).status_code == 200  # per key


def test_openapi_and_docs_need_no_key_and_load_nothing_from_outside(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json")
    assert doc.status_code == 200 and doc.json()["openapi"].startswith("3.1")
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and "POST" in page.text and "/api/v1/clients" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # offline: nothing remote
    assert "<script" not in page.text and "style=" not in page.text  # the panel's CSP

"""The users list for managers and admins: block, unblock, roles."""

from __future__ import annotations

import pytest

from mailctl.db import session_scope
from mailctl.models import User
from tests.support.web import logged_in, post_form


def _row(engine, user_id: int) -> User:  # type: ignore[no-untyped-def]
    with session_scope(engine, readonly=True) as s:
        return s.get(User, user_id)


@pytest.fixture
def people(make_user):  # type: ignore[no-untyped-def]
    return {role: make_user(role) for role in ("user", "manager", "editor", "admin")} | {
        "blocked": make_user("user", active=False),
        "target": make_user("user", email="target@example.com"),
    }


ROUTES = ["GET /manage/users", "POST block", "POST unblock", "POST role"]


def _call(client, route: str, target_id: int):  # type: ignore[no-untyped-def]
    if route.startswith("GET"):
        return client.get(route.split()[1])
    action = route.split()[1]
    data = {"role": "editor"} if action == "role" else {}
    return post_form(client, f"/manage/users/{target_id}/{action}", data)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "who,expected",
    [
        ("anonymous", 303),
        ("blocked", 303),
        ("user", 403),
        ("editor", 403),
        ("manager", {"GET /manage/users": 200, "POST role": 403}),
        ("admin", {"GET /manage/users": 200}),
    ],
)
def test_roles(client, people, route, who, expected) -> None:
    if who == "blocked":
        # A session opened before the block: it must not work any more.
        logged_in(client, people["target"].email)
        client.cookies.clear()
    elif who != "anonymous":
        logged_in(client, people[who].email)
    if isinstance(expected, dict):
        expected = expected.get(route, 303)
    response = _call(client, route, people["target"].id)
    assert response.status_code == expected, response.text[:500]
    if expected == 303 and who in ("anonymous", "blocked"):
        assert response.headers["location"].startswith("/login")


def test_blocked_session_redirects(client, engine, people) -> None:
    logged_in(client, people["target"].email)
    with session_scope(engine) as s:
        row = s.get(User, people["target"].id)
        row.is_active = False
        row.session_version += 1
        s.add(row)
    for route in ROUTES:
        response = _call(client, route, people["user"].id)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")


def test_manager_lists_and_blocks(client, engine, people) -> None:
    logged_in(client, people["manager"].email)
    page = client.get("/manage/users")
    assert page.status_code == 200
    for person in people.values():
        assert person.email in page.text
    role_form = f'action="/manage/users/{people["target"].id}/role"'
    assert role_form not in page.text  # a manager gets no role form
    assert post_form(client, f"/manage/users/{people['target'].id}/block").status_code == 303
    assert not _row(engine, people["target"].id).is_active
    assert "is blocked" in client.get("/manage/users").text
    assert post_form(client, f"/manage/users/{people['target'].id}/unblock").status_code == 303
    assert _row(engine, people["target"].id).is_active


def test_search_filter_and_paging(client, make_user, people) -> None:
    for i in range(55):
        make_user("user", email=f"bulk{i:02d}@example.com")
    logged_in(client, people["admin"].email)
    found = client.get("/manage/users?q=target")
    assert "target@example.com" in found.text and "bulk01@" not in found.text
    editors = client.get("/manage/users?role=editor")
    assert people["editor"].email in editors.text and "target@" not in editors.text
    first, second = client.get("/manage/users"), client.get("/manage/users?page=2")
    assert "page=2" in first.text
    assert sum(f"bulk{i:02d}@" in first.text + second.text for i in range(55)) == 55
    assert client.get("/manage/users?role=nonsense").status_code == 200


def test_action_returns_to_the_filtered_list(client, people) -> None:
    logged_in(client, people["admin"].email)
    response = post_form(
        client, f"/manage/users/{people['target'].id}/block", {"back": "q=target&page=2"}
    )
    assert response.headers["location"] == "/manage/users?q=target&page=2"


def test_manager_cannot_block_an_admin(client, engine, people) -> None:
    logged_in(client, people["manager"].email)
    assert post_form(client, f"/manage/users/{people['admin'].id}/block").status_code == 403
    assert _row(engine, people["admin"].id).is_active


def test_cannot_block_yourself_says_why(client, engine, people) -> None:
    logged_in(client, people["manager"].email)
    response = post_form(client, f"/manage/users/{people['manager'].id}/block")
    assert response.status_code == 303
    assert "cannot block yourself" in client.get("/manage/users").text
    assert _row(engine, people["manager"].id).is_active


def test_admin_changes_roles(client, engine, people) -> None:
    logged_in(client, people["admin"].email)
    page = client.get("/manage/users")
    assert f'action="/manage/users/{people["target"].id}/role"' in page.text
    assert (
        post_form(
            client, f"/manage/users/{people['target'].id}/role", {"role": "editor"}
        ).status_code
        == 303
    )
    assert _row(engine, people["target"].id).role == "editor"
    assert "target@example.com has the role editor" in client.get("/manage/users").text
    bad = post_form(client, f"/manage/users/{people['target'].id}/role", {"role": "emperor"})
    assert bad.status_code == 303
    assert "unknown role" in client.get("/manage/users").text.lower()
    assert _row(engine, people["target"].id).role == "editor"


def test_last_admin_is_protected(client, engine, people) -> None:
    logged_in(client, people["admin"].email)
    response = post_form(client, f"/manage/users/{people['admin'].id}/role", {"role": "user"})
    assert response.status_code == 303
    assert "last active admin" in client.get("/manage/users").text
    assert _row(engine, people["admin"].id).role == "admin"


@pytest.mark.parametrize(
    "path", ["/manage/users/999/block", "/manage/users/abc/block", "/manage/users/999/role"]
)
def test_unknown_user_is_404(client, people, path) -> None:
    logged_in(client, people["admin"].email)
    assert post_form(client, path, {"role": "user"}).status_code == 404


def test_get_on_an_action_is_not_allowed(client, people) -> None:
    logged_in(client, people["admin"].email)
    assert client.get(f"/manage/users/{people['target'].id}/block").status_code == 405

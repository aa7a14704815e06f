"""/api/v1/me and /api/v1/users (managers and admins: list, block, unblock)."""

from __future__ import annotations

from mailctl.services import users
from mailctl.web.api import schemas as s
from mailctl.web.api.convert import user_out
from mailctl.web.api.framework import Call, Operation


def get_me(call: Call) -> s.MeOut:
    me = users.get_user(session=call.session, actor=call.user, user_id=call.user.id or 0)
    return s.MeOut(**user_out(me).model_dump(), key_scope=call.caller.scope)


def list_users(call: Call) -> list[s.UserOut]:
    q: s.UserQuery = call.query
    found = users.list_users(
        session=call.session,
        actor=call.user,
        search=q.q,
        role=q.role,
        limit=q.limit,
        offset=q.offset,
    )
    return [user_out(u) for u in found]


def _blocked(call: Call, blocked: bool) -> s.UserOut:
    person = users.set_blocked(
        session=call.session, actor=call.user, user_id=call.ids["user_id"], blocked=blocked
    )
    return user_out(person)


def block_user(call: Call) -> s.UserOut:
    return _blocked(call, True)


def unblock_user(call: Call) -> s.UserOut:
    return _blocked(call, False)


T = "users"
OPERATIONS = [
    Operation("GET", "/me", get_me, "Who this key acts as", T, response=s.MeOut),
    Operation(
        "GET",
        "/users",
        list_users,
        "List users (managers and admins)",
        T,
        query=s.UserQuery,
        response=list[s.UserOut],
    ),
    Operation("POST", "/users/{user_id}/block", block_user, "Block a user", T, response=s.UserOut),
    Operation(
        "POST", "/users/{user_id}/unblock", unblock_user, "Unblock a user", T, response=s.UserOut
    ),
]

"""/api/v1/messages, /suppressions and /posts (the blog, for editors)."""

from __future__ import annotations

from mailctl.models import Suppression
from mailctl.services import blog, messages, suppressions
from mailctl.services.messages import render_limits
from mailctl.web.api import schemas as s
from mailctl.web.api.convert import message_out, post_out, when
from mailctl.web.api.framework import Call, Operation


def list_messages(call: Call) -> list[s.MessageOut]:
    q: s.PageQuery = call.query
    found = messages.list_messages(session=call.session, actor=call.user)
    return [message_out(m) for m in found[q.offset : q.offset + q.limit]]


def get_message(call: Call) -> s.MessageOut:
    return message_out(
        messages.get_message(
            session=call.session, actor=call.user, message_id=call.ids["message_id"]
        )
    )


def create_message(call: Call) -> s.MessageOut:
    body: s.MessageIn = call.body
    made = messages.add_message(
        session=call.session,
        actor=call.user,
        subject=body.subject,
        body=body.body,
        format=body.format,
        layout_id=body.layout_id,
        limits=render_limits(call.state.settings),
    )
    return message_out(made)


def update_message(call: Call) -> s.MessageOut:
    body: s.MessagePatch = call.body
    changed = messages.edit_message(
        session=call.session,
        actor=call.user,
        message_id=call.ids["message_id"],
        subject=body.subject,
        body=body.body,
        format=body.format,
        limits=render_limits(call.state.settings),
    )
    return message_out(changed)


def delete_message(call: Call) -> None:
    messages.delete_message(
        session=call.session, actor=call.user, message_id=call.ids["message_id"]
    )


def _suppression(e: Suppression) -> s.SuppressionOut:
    return s.SuppressionOut(
        email=e.email_key,
        reason=e.reason,
        note=e.note,
        created_at=e.created_at,
        removed_at=e.removed_at,
        removed_note=e.removed_note,
    )


def list_suppressions(call: Call) -> list[s.SuppressionOut]:
    q: s.SuppressionQuery = call.query
    found = suppressions.list_suppressions(
        session=call.session, actor=call.user, include_removed=q.removed
    )
    return [_suppression(e) for e in found]


def add_suppression(call: Call) -> s.SuppressionOut:
    body: s.SuppressionIn = call.body
    entry = suppressions.add_suppression(
        session=call.session,
        actor=call.user,
        email=body.email,
        secret=call.state.links.secret,
        reason=body.reason,
        note=body.note,
    )
    return _suppression(entry)


def lift_suppression(call: Call) -> s.SuppressionOut:
    body: s.LiftIn = call.body
    entry = suppressions.remove_suppression(
        session=call.session,
        actor=call.user,
        email=call.names["email"],
        secret=call.state.links.secret,
        note=body.note,
        force=body.force,
    )
    return _suppression(entry)


def list_posts(call: Call) -> list[s.PostOut]:
    q: s.PageQuery = call.query
    found = blog.list_posts(session=call.session, actor=call.user, limit=q.limit, offset=q.offset)
    return [post_out(p) for p in found]


def get_post(call: Call) -> s.PostOut:
    return post_out(
        blog.get_post(session=call.session, actor=call.user, post_id=call.ids["post_id"])
    )


def create_post(call: Call) -> s.PostOut:
    body: s.PostIn = call.body
    at = when(call, body.published_at, "published_at") if body.published_at else None
    post = blog.add_post(
        session=call.session,
        actor=call.user,
        title=body.title,
        content=body.content,
        published_at=at,
    )
    return post_out(post)


def update_post(call: Call) -> s.PostOut:
    body: s.PostPatch = call.body
    at = when(call, body.published_at, "published_at") if body.published_at else None
    post = blog.edit_post(
        session=call.session,
        actor=call.user,
        post_id=call.ids["post_id"],
        title=body.title,
        content=body.content,
        published_at=at,
        unpublish=body.published_at == "",
    )
    return post_out(post)


def delete_post(call: Call) -> None:
    blog.delete_post(session=call.session, actor=call.user, post_id=call.ids["post_id"])


M, SUP, POSTS = "messages", "suppression", "blog"
OPERATIONS = [
    Operation(
        "GET",
        "/messages",
        list_messages,
        "List messages",
        M,
        query=s.PageQuery,
        response=list[s.MessageOut],
    ),
    Operation(
        "POST",
        "/messages",
        create_message,
        "Write a message",
        M,
        body=s.MessageIn,
        response=s.MessageOut,
        status=201,
    ),
    Operation(
        "GET", "/messages/{message_id}", get_message, "Show a message", M, response=s.MessageOut
    ),
    Operation(
        "PATCH",
        "/messages/{message_id}",
        update_message,
        "Change a message",
        M,
        body=s.MessagePatch,
        response=s.MessageOut,
    ),
    Operation(
        "DELETE", "/messages/{message_id}", delete_message, "Delete a message no mailing uses", M
    ),
    Operation(
        "GET",
        "/suppressions",
        list_suppressions,
        "List addresses never mailed",
        SUP,
        query=s.SuppressionQuery,
        response=list[s.SuppressionOut],
    ),
    Operation(
        "POST",
        "/suppressions",
        add_suppression,
        "Never mail an address",
        SUP,
        body=s.SuppressionIn,
        response=s.SuppressionOut,
        status=201,
    ),
    Operation(
        "POST",
        "/suppressions/{email}/lift",
        lift_suppression,
        "Lift a suppression, saying why",
        SUP,
        body=s.LiftIn,
        response=s.SuppressionOut,
    ),
    Operation(
        "GET",
        "/posts",
        list_posts,
        "List blog posts, drafts included",
        POSTS,
        query=s.PageQuery,
        response=list[s.PostOut],
    ),
    Operation(
        "POST",
        "/posts",
        create_post,
        "Write a blog post",
        POSTS,
        body=s.PostIn,
        response=s.PostOut,
        status=201,
    ),
    Operation("GET", "/posts/{post_id}", get_post, "Show a blog post", POSTS, response=s.PostOut),
    Operation(
        "PATCH",
        "/posts/{post_id}",
        update_post,
        "Change or (un)publish a blog post",
        POSTS,
        body=s.PostPatch,
        response=s.PostOut,
    ),
    Operation("DELETE", "/posts/{post_id}", delete_post, "Delete a blog post", POSTS),
]

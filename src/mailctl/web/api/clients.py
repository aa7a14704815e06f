"""/api/v1/clients and /api/v1/tags: the CLI's `client` and `tag` commands over HTTP."""

from __future__ import annotations

from mailctl.services import client_pages, clients, tags
from mailctl.services.client_records import Record, import_records
from mailctl.services.tagging import tags_of
from mailctl.web.api import schemas as s
from mailctl.web.api.convert import client_out
from mailctl.web.api.framework import Call, Operation


def _one(call: Call, client_id: int) -> s.ClientOut:
    client = clients.get_client(session=call.session, actor=call.user, client_id=client_id)
    return client_out(client, tags_of(call.session, [client_id])[client_id])


def list_clients(call: Call) -> s.ClientPage:
    q: s.ClientQuery = call.query
    page = client_pages.client_page(
        session=call.session,
        actor=call.user,
        search=q.q,
        tag=q.tag,
        cursor=q.cursor,
        limit=q.limit,
    )
    return s.ClientPage(
        items=[client_out(c, page.tags.get(c.id or 0, [])) for c in page.clients],
        next_cursor=page.next_cursor,
    )


def get_client(call: Call) -> s.ClientOut:
    return _one(call, call.ids["client_id"])


def create_client(call: Call) -> s.ClientOut:
    body: s.ClientIn = call.body
    client = clients.add_client(
        session=call.session,
        actor=call.user,
        email=body.email,
        full_name=body.full_name,
        comment=body.comment,
        tags=body.tags,
    )
    if body.attrs:
        clients.edit_client(
            session=call.session, actor=call.user, client_id=client.id or 0, attrs=body.attrs
        )
    call.session.flush()
    return _one(call, client.id or 0)


def update_client(call: Call) -> s.ClientOut:
    body: s.ClientPatch = call.body
    client_id = call.ids["client_id"]
    clients.edit_client(
        session=call.session,
        actor=call.user,
        client_id=client_id,
        email=body.email,
        full_name=body.full_name,
        comment=body.comment,
        attrs=body.attrs,
        tags=body.tags,
    )
    call.session.flush()
    return _one(call, client_id)


def delete_client(call: Call) -> None:
    clients.delete_client(session=call.session, actor=call.user, client_id=call.ids["client_id"])


def import_clients(call: Call) -> s.ImportOut:
    body: s.ImportIn = call.body
    report = import_records(
        session=call.session,
        actor=call.user,
        records=[
            Record(c.email, c.full_name, c.comment, tuple(c.tags), dict(c.attrs))
            for c in body.clients
        ],
        strict=body.strict,
    )
    return s.ImportOut(
        added=report.added,
        ids=report.ids,
        errors=[s.RowError(index=i, detail=why) for i, why in report.errors],
    )


def list_tags(call: Call) -> list[s.TagOut]:
    rows = tags.list_tags(session=call.session, actor=call.user)
    return [s.TagOut(name=r.tag.name, clients=r.clients, public=r.tag.is_public) for r in rows]


def set_tag_public(call: Call) -> s.TagOut:
    body: s.TagPublicIn = call.body
    name = call.names["name"]
    tag = tags.set_tag_public(session=call.session, actor=call.user, name=name, public=body.public)
    count = next(
        (
            r.clients
            for r in tags.list_tags(session=call.session, actor=call.user, owner_id=tag.owner_id)
            if r.tag.id == tag.id
        ),
        0,
    )
    return s.TagOut(name=tag.name, clients=count, public=tag.is_public)


def delete_tag(call: Call) -> None:
    tags.delete_tag(session=call.session, actor=call.user, name=call.names["name"])


TAG = "clients"
OPERATIONS = [
    Operation(
        "GET",
        "/clients",
        list_clients,
        "List clients, a page at a time",
        TAG,
        query=s.ClientQuery,
        response=s.ClientPage,
        description="Search (`q`) and filter (`tag`); follow `next_cursor` for more.",
    ),
    Operation(
        "POST",
        "/clients",
        create_client,
        "Add a client",
        TAG,
        body=s.ClientIn,
        response=s.ClientOut,
        status=201,
    ),
    Operation(
        "POST",
        "/clients/import",
        import_clients,
        "Import many clients at once",
        TAG,
        body=s.ImportIn,
        response=s.ImportOut,
        description="Bad rows are reported by index and the good ones added; with "
        "`strict`, one bad row rejects them all.",
    ),
    Operation(
        "GET", "/clients/{client_id}", get_client, "Show a client", TAG, response=s.ClientOut
    ),
    Operation(
        "PATCH",
        "/clients/{client_id}",
        update_client,
        "Change a client",
        TAG,
        body=s.ClientPatch,
        response=s.ClientOut,
    ),
    Operation("DELETE", "/clients/{client_id}", delete_client, "Delete a client", TAG),
    Operation(
        "GET",
        "/tags",
        list_tags,
        "List tags with their client counts",
        "tags",
        response=list[s.TagOut],
    ),
    Operation(
        "PUT",
        "/tags/{name}/public",
        set_tag_public,
        "Offer a tag on the preference page, or stop",
        "tags",
        body=s.TagPublicIn,
        response=s.TagOut,
    ),
    Operation("DELETE", "/tags/{name}", delete_tag, "Delete a tag (its clients stay)", "tags"),
]

"""What the API reads and answers, as pydantic models: the routes validate with them and the
OpenAPI document is made from them. Field names follow the CLI's (`email`, `full_name`,
`comment`; a mailing's `message_id`, `client_ids` / `tags` / `all_clients`, `start`, `end`,
`every`). The limits here only bound the work a request may ask for; the services' rules
(valid addresses, unique emails, who may do what) still decide."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from mailctl.services.blog import CONTENT_MAX
from mailctl.services.messages import BODY_MAX
from mailctl.services.validation import ID_MAX

WHEN = "ISO 8601 (a time without a zone is in the configured zone), `now` or `+2h`"


class In(BaseModel):
    """A request body: unknown fields are refused (a typo must not be silently dropped), and
    types are JSON's own (0 is not false, "5" is not 5)."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _not_nullable(schema: dict[str, Any]) -> None:
    """A patch's fields in the OpenAPI document: optional, never null."""
    for prop in schema.get("properties", {}).values():
        kinds = [k for k in prop.pop("anyOf", []) if k.get("type") != "null"]
        if len(kinds) == 1:
            prop.update(kinds[0])
        elif kinds:
            prop["anyOf"] = kinds
        if "default" in prop and prop["default"] is None:
            del prop["default"]


class Patch(In):
    """A partial update: a field left out keeps its value. `null` is refused with the field
    (422), not read as "keep it": `{"email": null}` is a caller's mistake, and a field that
    may be emptied takes an empty value instead."""

    model_config = ConfigDict(json_schema_extra=_not_nullable)  # merged with In's

    @field_validator("*", mode="before")
    @classmethod
    def _no_null(cls, value: Any) -> Any:
        if value is None:
            raise PydanticCustomError("null", "may not be null: leave it out to keep its value")
        return value


class Query(BaseModel):
    """A query string: unknown parameters are refused too (`?serach=` must not list all)."""

    model_config = ConfigDict(extra="forbid")


# -- clients ----------------------------------------------------------------------------------


class ClientIn(In):
    email: str = Field(min_length=1, max_length=254)
    full_name: str = Field(default="", max_length=200)
    comment: str = Field(default="", max_length=2000)
    tags: list[str] = Field(default_factory=list, max_length=100)
    attrs: dict[str, str] = Field(
        default_factory=dict, max_length=100, description="custom field values by field name"
    )


class ClientPatch(Patch):
    email: str | None = Field(default=None, min_length=1, max_length=254)
    full_name: str | None = Field(default=None, max_length=200)
    comment: str | None = Field(default=None, max_length=2000)
    tags: list[str] | None = Field(
        default=None, max_length=100, description="the client's exact set of tags"
    )
    attrs: dict[str, str] | None = Field(
        default=None, max_length=100, description="values to set; an empty value clears one"
    )


class ClientOut(BaseModel):
    id: int
    owner_id: int
    email: str
    full_name: str
    comment: str
    tags: list[str]
    attrs: dict[str, str]
    unsubscribed_at: datetime | None
    created_at: datetime


class ClientQuery(Query):
    q: str | None = Field(default=None, max_length=200, description="search email, name, comment")
    tag: str | None = Field(default=None, max_length=100)
    cursor: str | None = Field(default=None, max_length=40, description="next_cursor of a page")
    limit: int = Field(default=50, ge=1, le=200)


class ClientPage(BaseModel):
    items: list[ClientOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null: none")


class ImportIn(In):
    clients: list[ClientIn] = Field(min_length=1, max_length=5000)
    strict: bool = Field(default=False, description="one bad row rejects them all")


class RowError(BaseModel):
    index: int = Field(description="the row's position in `clients`, from 0")
    detail: str


class ImportOut(BaseModel):
    added: int
    ids: list[int]
    errors: list[RowError]


# -- tags, suppression ------------------------------------------------------------------------


class TagOut(BaseModel):
    name: str
    clients: int
    public: bool


class TagPublicIn(In):
    public: bool


class SuppressionOut(BaseModel):
    email: str | None = Field(description="null once the person was erased")
    reason: str
    note: str
    created_at: datetime
    removed_at: datetime | None
    removed_note: str


class SuppressionIn(In):
    email: str = Field(min_length=1, max_length=254)
    reason: Literal["manual", "unsubscribed", "bounce", "complaint"] = "manual"
    note: str = Field(default="", max_length=500)


class SuppressionQuery(Query):
    removed: bool = Field(default=False, description="also entries lifted since")


class LiftIn(In):
    note: str = Field(min_length=1, max_length=500, description="why it is lifted")
    force: bool = Field(default=False, description="lift a complaint (admins only)")


# -- messages ---------------------------------------------------------------------------------


class MessageIn(In):
    subject: str = Field(min_length=1, max_length=255)
    body: str = Field(min_length=1, max_length=BODY_MAX)
    format: Literal["markdown", "html", "text"] = "markdown"
    layout_id: int | None = Field(default=None, ge=1, lt=ID_MAX)


class MessagePatch(Patch):
    subject: str | None = Field(default=None, min_length=1, max_length=255)
    body: str | None = Field(default=None, min_length=1, max_length=BODY_MAX)
    format: Literal["markdown", "html", "text"] | None = None


class MessageOut(BaseModel):
    id: int
    owner_id: int
    subject: str
    body: str
    format: str
    layout_id: int | None
    created_at: datetime
    updated_at: datetime


# -- mailings ---------------------------------------------------------------------------------


class MailingIn(In):
    message_id: int = Field(ge=1, lt=ID_MAX)
    client_ids: list[int] | None = Field(default=None, max_length=100_000)
    tags: list[str] | None = Field(default=None, max_length=100)
    all_clients: bool = False
    start: str = Field(default="now", max_length=64, description=WHEN)
    end: str | None = Field(default=None, max_length=64, description=WHEN)
    every: Literal["once", "day", "week", "month"] = "once"


class MailingPatch(Patch):
    message_id: int | None = Field(default=None, ge=1, lt=ID_MAX)
    client_ids: list[int] | None = Field(default=None, max_length=100_000)
    tags: list[str] | None = Field(default=None, max_length=100)
    all_clients: bool = False
    start: str | None = Field(default=None, max_length=64, description=WHEN)
    end: str | None = Field(default=None, max_length=64, description=f"{WHEN}; empty: no end")
    every: Literal["once", "day", "week", "month"] | None = None


class MailingOut(BaseModel):
    id: int
    owner_id: int
    message_id: int
    audience: str = Field(description="clients, tags or all")
    client_ids: list[int]
    tags: list[str]
    every: str
    start: datetime
    end: datetime | None
    status: str = Field(description="created, started, finished, or disabled")
    is_enabled: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_error: str | None
    quota_server: str | None = Field(
        default=None, description="the server whose full quota the last pass paused for"
    )
    quota_until: datetime | None = Field(default=None, description="when that quota reopens")


class MailingQuery(Query):
    status: Literal["created", "started", "finished", "disabled"] | None = None
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class SendOut(BaseModel):
    mailing_id: int
    queued: bool = Field(description="the run is being sent in the background")


class RunOut(BaseModel):
    id: int
    scheduled_at: datetime
    started_at: datetime
    finished_at: datetime | None
    recipients: int
    counts: dict[str, int]


class AttemptOut(BaseModel):
    id: int
    run_id: int
    email: str
    attempted_at: datetime
    status: str
    smtp_code: int | None
    response: str | None


class AttemptQuery(Query):
    status: Literal["sent", "failed", "deferred", "unknown", "skipped"] | None = None
    before: str | None = Field(default=None, max_length=80, description="`older` of a page")
    after: str | None = Field(default=None, max_length=80, description="`newer` of a page")


class AttemptPage(BaseModel):
    items: list[AttemptOut]
    total: int = Field(description="counted up to total_cap + 1")
    total_cap: int
    older: str | None = Field(description="pass as ?before= for older attempts")
    newer: str | None = Field(description="pass as ?after= for newer attempts")


class ReportOut(BaseModel):
    mailing_id: int
    counts: dict[str, int]
    attempts: int
    runs: int
    success_rate: float | None
    last_attempt_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    quota_server: str | None = Field(
        default=None, description="the server whose full quota the last pass paused for"
    )
    quota_until: datetime | None = Field(default=None, description="when that quota reopens")


# -- blog, users ------------------------------------------------------------------------------


class PostIn(In):
    title: str = Field(min_length=1, max_length=200)
    content: str = Field(min_length=1, max_length=CONTENT_MAX)
    published_at: str | None = Field(default=None, max_length=64, description=WHEN)


class PostPatch(Patch):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    content: str | None = Field(default=None, min_length=1, max_length=CONTENT_MAX)
    published_at: str | None = Field(
        default=None, max_length=64, description="empty string: back to a draft"
    )


class PostOut(BaseModel):
    id: int
    author_id: int | None
    title: str
    content: str
    state: str = Field(description="draft, scheduled or published")
    published_at: datetime | None
    views: int
    created_at: datetime
    updated_at: datetime


class PageQuery(Query):
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class UserQuery(PageQuery):
    q: str | None = Field(default=None, max_length=200)
    role: Literal["user", "manager", "editor", "admin"] | None = None


class UserOut(BaseModel):
    id: int
    email: str
    full_name: str
    role: str
    is_active: bool
    is_verified: bool
    date_joined: datetime
    last_login: datetime | None


class MeOut(UserOut):
    key_scope: str

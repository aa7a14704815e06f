"""What every command shares: settings, the engine, the acting user, the clock.

Imports of the database layer wait until a command asks for it: `--help` and `--version`
need none of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING

import typer

from mailctl.config import Settings, load_settings
from mailctl.errors import MailctlError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from mailctl.models import User
    from mailctl.schedule import Clock
    from mailctl.services.messages import RenderLimits


class AppContext:
    def __init__(self, config_path: str | None, as_email: str | None) -> None:
        self.config_path = config_path
        self.as_email = as_email

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config_path)

    _raw: Engine | None = None
    _raw_creates = False
    _cache_warned = False

    def open_engine(self, *, create: bool = False) -> Engine:
        """The engine without the schema check. Only `create=True` (`init`, `db upgrade`, the
        demo) may make a SQLite database that is not there; any other command is told there
        is none and writes nothing."""
        from mailctl.db import make_engine, on_commit

        if self._raw is not None and (self._raw_creates or not create):
            return self._raw
        if self._raw is not None:
            self._raw.dispose()
        engine = make_engine(self.settings, create=create)
        settings = self.settings

        def drop_cached_pages(tables: set[str]) -> None:
            # A change from the shell shows on the panel at once, not after the cache
            # lifetime. Only a commit that changed something pays for loading diskcache.
            # It is committed already: a cache that cannot be cleared is a warning, once per
            # command however many commits it makes.
            from mailctl.cache import drop_for_tables

            try:
                drop_for_tables(settings, tables)
            except MailctlError as exc:
                if not self._cache_warned:
                    self._cache_warned = True
                    ttl = settings.cache.ttl_seconds
                    typer.echo(
                        f"warning: {exc}; the panel may show old figures for up to {ttl}s"
                        " (cache.ttl_seconds)",
                        err=True,
                    )

        on_commit(engine, drop_cached_pages)
        self._raw, self._raw_creates = engine, create
        return engine

    @property
    def raw_engine(self) -> Engine:
        """The engine without the schema check, for `db current` and the daemon."""
        return self.open_engine()

    @cached_property
    def engine(self) -> Engine:
        from mailctl.migrations import require_current

        require_current(self.raw_engine)
        return self.raw_engine

    @cached_property
    def render_limits(self) -> RenderLimits:
        from mailctl.services.messages import render_limits

        return render_limits(self.settings)

    @property
    def tz(self) -> str:
        return self.settings.scheduler.timezone

    @property
    def clock(self) -> Clock:
        from mailctl.schedule import Clock

        return Clock.from_settings(self.settings)

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        from mailctl.db import session_scope

        with session_scope(self.engine, readonly=readonly) as session:
            yield session

    def actor(self, session: Session) -> User:
        from mailctl.services.users import resolve_actor

        return resolve_actor(session=session, email=self.as_email)


def app_context(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):
        obj = AppContext(None, None)
        ctx.find_root().obj = obj
    return obj

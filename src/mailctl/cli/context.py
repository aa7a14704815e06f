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

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from mailctl.models import User
    from mailctl.services.mailings import Clock


class AppContext:
    def __init__(self, config_path: str | None, as_email: str | None) -> None:
        self.config_path = config_path
        self.as_email = as_email

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config_path)

    @cached_property
    def raw_engine(self) -> Engine:
        """The engine without the schema check, for `init` and `db`."""
        from mailctl.db import make_engine, on_commit

        engine = make_engine(self.settings)
        settings = self.settings

        def drop_cached_pages(tables: set[str]) -> None:
            # A change from the shell shows on the panel at once, not after the cache
            # lifetime. Only a commit that changed something pays for loading diskcache.
            from mailctl.cache import drop_for_tables

            drop_for_tables(settings, tables)

        on_commit(engine, drop_cached_pages)
        return engine

    @cached_property
    def engine(self) -> Engine:
        from mailctl.migrations import require_current

        require_current(self.raw_engine)
        return self.raw_engine

    @property
    def tz(self) -> str:
        return self.settings.timezone

    @property
    def clock(self) -> Clock:
        from mailctl.services.mailings import Clock

        return Clock(tz=self.tz, period_seconds=self.settings.test_period_seconds)

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

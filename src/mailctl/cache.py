"""A disk cache shared by the panel's workers (and by every process on the host)."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar, cast

import diskcache

from mailctl.config import Settings
from mailctl.errors import ConfigError

T = TypeVar("T")
log = logging.getLogger(__name__)

# Which cached things depend on which tables.
TAGS_BY_TABLE = {
    "mailings": ("stats", "home"),
    "mailing_clients": ("stats", "home"),
    "clients": ("stats", "home"),
    # Tags and users change who is in an audience (a tag's clients, a user's cascade).
    "client_tags": ("stats", "home"),
    "mailing_tags": ("stats", "home"),
    "tags": ("stats", "home"),
    "users": ("stats", "home"),
    "blog_posts": ("blog", "home"),
}


def tags_for(tables: set[str]) -> set[str]:
    return {tag for t in tables for tag in TAGS_BY_TABLE.get(t, ())}


def drop_for_tables(settings: Settings, tables: set[str]) -> None:
    """For processes without a cache of their own (the CLI): open it only when needed (not at
    all when the panel caches no pages). ConfigError if it cannot be opened or cleared."""
    tags = tags_for(tables)
    if not tags or settings.cache.ttl_seconds <= 0:
        return
    cache = Cache(settings)
    try:
        cache.invalidate(*tags)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(
            f"cannot clear the cache in {cache.directory} (cache.dir): {_reason(exc)}"
        ) from None
    finally:
        cache.close()


def _reason(exc: OSError | sqlite3.Error) -> str:
    errno = getattr(exc, "errno", None)
    return os.strerror(errno) if errno else str(exc)


class Cache:
    def __init__(self, settings: Settings) -> None:
        self.ttl = settings.cache.ttl_seconds
        self.directory = settings.cache.dir
        try:
            self._cache = diskcache.Cache(self.directory, tag_index=True)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"cannot open the cache in {self.directory} (cache.dir): {_reason(exc)}"
            ) from None

    def get_or_set(self, key: str, tag: str, compute: Callable[[], T]) -> T:
        if self.ttl <= 0:
            return compute()
        hit = self._cache.get(key, default=None)
        if hit is not None:
            return cast(T, hit)  # what compute() returned when it was stored
        value = compute()
        self._cache.set(key, value, expire=self.ttl, tag=tag)
        return value

    def get(self, key: str) -> Any:
        return self._cache.get(key, default=None) if self.ttl > 0 else None

    def put(self, key: str, tag: str, value: Any) -> None:
        if self.ttl > 0:
            self._cache.set(key, value, expire=self.ttl, tag=tag)

    def invalidate(self, *tags: str) -> None:
        for tag in tags:
            self._cache.evict(tag)

    def on_tables_changed(self, tables: set[str]) -> None:
        """The panel's commit hook. The change is committed already: a cache that cannot be
        cleared (a disk gone read-only, a damaged file) must not turn it into an error page
        (the user would make it twice); its pages just live out their lifetime."""
        try:
            self.invalidate(*tags_for(tables))
        except (OSError, sqlite3.Error) as exc:
            log.warning(
                "cannot clear the cache in %s (cache.dir): %s; pages may be up to %ss old",
                self.directory,
                _reason(exc),
                self.ttl,
            )

    # Counters for throttling: kept whatever ttl_seconds says (0 turns off caching, never
    # the limits), shared by every worker and process on the host.

    def bump(self, key: str, window: int) -> int:
        """Add one to the counter and return it; a new counter lives `window` seconds."""
        self._cache.add(key, 0, expire=window)  # starts the window; incr keeps its expiry
        return int(self._cache.incr(key))

    def count(self, key: str) -> int:
        return int(self._cache.get(key, default=0) or 0)

    def forget(self, key: str) -> None:
        self._cache.delete(key)

    def close(self) -> None:
        self._cache.close()

    def raw(self) -> Any:
        return self._cache

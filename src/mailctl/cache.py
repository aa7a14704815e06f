"""A disk cache shared by the panel's workers (and by every process on the host)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import diskcache

from mailctl.config import Settings

T = TypeVar("T")

# Which cached things depend on which tables.
TAGS_BY_TABLE = {
    "mailings": ("stats", "home"),
    "mailing_clients": ("stats", "home"),
    "clients": ("stats", "home"),
    "blog_posts": ("blog", "home"),
}


def tags_for(tables: set[str]) -> set[str]:
    return {tag for t in tables for tag in TAGS_BY_TABLE.get(t, ())}


def drop_for_tables(settings: Settings, tables: set[str]) -> None:
    """For processes without a cache of their own (the CLI): open it only when needed."""
    tags = tags_for(tables)
    if tags:
        cache = Cache(settings)
        try:
            cache.invalidate(*tags)
        finally:
            cache.close()


class Cache:
    def __init__(self, settings: Settings) -> None:
        self.ttl = settings.cache.ttl_seconds
        self._cache = diskcache.Cache(settings.cache.dir, tag_index=True)

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
        self.invalidate(*tags_for(tables))

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

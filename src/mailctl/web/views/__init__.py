"""Every route of the panel, one module per area."""

from __future__ import annotations

import importlib

from starlette.routing import BaseRoute

# In matching order: a module whose paths are more specific comes first.
AREAS = (
    "public",
    "subscribe",
    "accounts",
    "apikeys",
    "clients",
    "audience",
    "messages",
    "layouts",
    "rendered",
    "mailing_forms",
    "mailings",
    "manager",
    "editor",
)


def routes() -> list[BaseRoute]:
    collected: list[BaseRoute] = []
    for area in AREAS:
        module = importlib.import_module(f"mailctl.web.views.{area}")
        collected.extend(module.routes)
    # The relays' webhooks (bounces and complaints) live beside the views: no pages.
    collected.extend(importlib.import_module("mailctl.web.hooks").routes)
    return collected

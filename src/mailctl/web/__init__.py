"""The web panel: a Starlette app over the same services as the CLI."""

from mailctl.web.app import create_app

__all__ = ["create_app"]

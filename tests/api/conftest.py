"""API fixtures: the panel app's TestClient and keys for the world's roles."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine

from mailctl.config import Settings
from mailctl.db import session_scope
from mailctl.models import User
from mailctl.services import apikeys


@pytest.fixture
def make_key(engine: Engine, settings: Settings) -> Callable[..., str]:
    """make_key(user_id, scope="write"): a new key's token (made while the user is active)."""

    def make(user_id: int | None, scope: str = "write", name: str = "") -> str:
        with session_scope(engine) as s:
            user = s.get(User, user_id)
            assert user is not None
            was = user.is_active
            user.is_active = True
            made = apikeys.create_key(
                session=s, actor=user, secret=settings.web_secret_key(), name=name, scope=scope
            )
            user.is_active = was
            s.add(user)
            return made.token

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}

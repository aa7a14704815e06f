"""Bounce fixtures: the delivery tests' owner and mailings, and helpers that send a run."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine

from mailctl.config import Settings
from mailctl.schedule import Clock
from tests.sending.conftest import make_mailing, owner  # noqa: F401 (fixtures used here)


@pytest.fixture
def send_all(engine: Engine) -> Callable[[Settings], int]:
    """send(settings): one pass of everything due; the number sent."""
    from mailctl.services.delivery import run_pass

    def send(settings: Settings) -> int:
        summary = run_pass(
            engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="test"
        )
        return summary.sent

    return send


from tests.support.dovecot import dovecot  # noqa: E402, F401 (a fixture: the bounce mailbox)

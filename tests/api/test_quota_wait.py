"""A mailing paused by a full quota, through the API: the server and when its window opens,
beside (not in) `last_error`."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from mailctl.schedule import Clock
from tests.api.conftest import bearer
from tests.support.relay import Relay
from tests.support.smtp import smtp_env
from tests.support.world import World


def test_the_api_shows_a_quota_pause_as_its_own_fields(
    client: TestClient, engine, world: World, make_key, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from mailctl.config import load_settings
    from mailctl.services.delivery import run_pass

    owner = bearer(make_key(world.users["owner"].id))
    with Relay() as relay:
        for key, value in smtp_env(relay.port, smtp_rate_per_day=2, smtp_name="ses-eu").items():
            monkeypatch.setenv(key, value)
        settings = load_settings()
        mailing_id, _ = world.mailing(5)
        summary = run_pass(
            engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="t"
        )
        assert summary.sent == 2 and len(relay.rcpts()) == 2
    mailing = client.get(f"/api/v1/mailings/{mailing_id}", headers=owner)
    assert mailing.status_code == 200, mailing.text
    body = mailing.json()
    assert body["quota_server"] == "ses-eu" and body["quota_until"]
    assert body["last_error"] is None
    report = client.get(f"/api/v1/mailings/{mailing_id}/report", headers=owner)
    assert report.status_code == 200, report.text
    assert report.json()["quota_server"] == "ses-eu" and report.json()["last_error"] is None

"""A mailing's life: created, due, started, finished; the schedule follows edits; the figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from mailctl.errors import Invalid
from mailctl.models import Delivery, Mailing, MailingClient, MailingRun, MailingStatus
from mailctl.schedule import Clock
from mailctl.services import clients, mailings, messages
from tests.support.world import World

# The clock every call here runs on: UTC wall time, real periods.
CLOCK = Clock(tz="UTC", period_seconds=None)

NOW = datetime(2030, 3, 10, 9, 0, tzinfo=UTC)


def _new(session: Session, world: World, role: str = "owner", **kw: Any) -> Mailing:
    kw.setdefault("start", NOW + timedelta(hours=1))
    kw.setdefault("client_ids", [world.clients[role]])
    return mailings.add_mailing(
        session=session,
        actor=world.users[role],
        message_id=world.messages[role],
        now=NOW,
        **kw,
        clock=CLOCK,
    )


def _edit(session: Session, world: World, mailing: Mailing, **kw: Any) -> Mailing:
    return mailings.edit_mailing(
        session=session,
        actor=world.users["owner"],
        mailing_id=mailing.id or 0,
        now=NOW,
        **{"clock": CLOCK, **kw},
    )


# -- creation and due -----------------------------------------------------------------------


@pytest.mark.parametrize("every", ["once", "day", "week", "month"])
def test_new_mailing_is_created_with_its_first_run_at_the_start(
    session: Session, world: World, every: str
) -> None:
    start = NOW + timedelta(days=2)
    mailing = _new(session, world, start=start, end=start + timedelta(days=90), every=every)
    session.flush()
    session.refresh(mailing)
    assert (mailing.status, mailing.every, mailing.is_enabled) == ("created", every, True)
    assert mailing.next_run_at == start
    assert mailing.last_run_at is None
    assert mailings.display_status(mailing) == "created"


def test_a_mailing_is_due_from_its_start_until_its_end(session: Session, world: World) -> None:
    start, end = NOW + timedelta(hours=1), NOW + timedelta(days=1)
    mailing = _new(session, world, start=start, end=end, every="day")
    assert not mailings.is_due(mailing, NOW)
    assert mailings.is_due(mailing, start)
    assert mailings.is_due(mailing, start + timedelta(hours=3))
    assert not mailings.is_due(mailing, end)


def test_a_mailing_starting_now_is_due_at_once(session: Session, world: World) -> None:
    mailing = _new(session, world, start=NOW)
    assert mailing.next_run_at == NOW
    assert mailings.is_due(mailing, NOW)


def test_a_disabled_mailing_is_never_due(session: Session, world: World) -> None:
    mailing = _new(session, world, start=NOW)
    owner = world.users["owner"]
    mailings.set_enabled(session=session, actor=owner, mailing_id=mailing.id or 0, enabled=False)
    assert not mailings.is_due(mailing, NOW)
    assert not mailings.is_due(mailing, NOW + timedelta(days=30))
    assert mailings.display_status(mailing) == "created (disabled)"
    assert mailings.list_mailings(session=session, actor=owner, status="disabled") == [mailing]
    mailings.set_enabled(session=session, actor=owner, mailing_id=mailing.id or 0, enabled=True)
    assert mailings.is_due(mailing, NOW)


def test_list_filters_by_status(session: Session, world: World) -> None:
    owner = world.users["owner"]
    fresh = _new(session, world)
    done = _new(session, world)
    done.status = MailingStatus.finished.value
    session.flush()
    created = mailings.list_mailings(session=session, actor=owner, status="created")
    assert fresh in created and done not in created
    assert mailings.list_mailings(session=session, actor=owner, status="finished") == [done]


# -- finishing ------------------------------------------------------------------------------


def _run_with(session: Session, mailing: Mailing, *states: str) -> list[Delivery]:
    run = MailingRun(mailing_id=mailing.id or 0, scheduled_at=NOW, started_at=NOW)
    session.add(run)
    session.flush()
    rows = [
        Delivery(
            run_id=run.id or 0,
            mailing_id=mailing.id or 0,
            email=f"r{i}@example.com",
            state=state,
        )
        for i, state in enumerate(states)
    ]
    session.add_all(rows)
    session.flush()
    return rows


def _after_last_run(mailing: Mailing) -> None:
    mailing.status = MailingStatus.started.value
    mailing.last_run_at = NOW
    mailing.next_run_at = None


def test_refresh_finishes_when_no_run_is_left_and_nothing_is_open(
    session: Session, world: World
) -> None:
    mailing = _new(session, world, start=NOW)
    _run_with(session, mailing, "sent", "failed", "unknown", "skipped")
    _after_last_run(mailing)
    mailings.refresh_status(session, mailing, NOW)
    assert mailing.status == "finished"


@pytest.mark.parametrize("open_state", ["pending", "sending", "deferred"])
def test_refresh_waits_for_open_deliveries(session: Session, world: World, open_state: str) -> None:
    mailing = _new(session, world, start=NOW)
    rows = _run_with(session, mailing, "sent", open_state)
    _after_last_run(mailing)
    mailings.refresh_status(session, mailing, NOW)
    assert mailing.status == "started"
    rows[1].state = "sent"
    session.flush()
    mailings.refresh_status(session, mailing, NOW)
    assert mailing.status == "finished"


def test_refresh_keeps_a_mailing_with_runs_ahead(session: Session, world: World) -> None:
    mailing = _new(session, world, start=NOW, every="day")
    _run_with(session, mailing, "sent")
    mailing.status = MailingStatus.started.value
    mailing.next_run_at = NOW + timedelta(days=1)
    mailings.refresh_status(session, mailing, NOW)
    assert (mailing.status, mailing.next_run_at) == ("started", NOW + timedelta(days=1))


def test_refresh_finishes_once_the_end_has_passed(session: Session, world: World) -> None:
    end = NOW + timedelta(days=3)
    mailing = _new(session, world, start=NOW, end=end, every="day")
    mailing.status = MailingStatus.started.value
    mailing.next_run_at = NOW + timedelta(days=2)
    mailings.refresh_status(session, mailing, end)
    assert (mailing.status, mailing.next_run_at) == ("finished", None)


# -- edits move the schedule ----------------------------------------------------------------


def test_editing_the_start_of_a_created_mailing_moves_its_first_run(
    session: Session, world: World
) -> None:
    mailing = _new(session, world, start=NOW + timedelta(hours=1), every="day")
    later = NOW + timedelta(days=5)
    _edit(session, world, mailing, start=later)
    assert (mailing.start_at, mailing.next_run_at, mailing.status) == (later, later, "created")


def test_editing_and_clearing_the_end(session: Session, world: World) -> None:
    mailing = _new(session, world, start=NOW + timedelta(hours=1), every="day")
    _edit(session, world, mailing, start=NOW + timedelta(days=3), end=NOW + timedelta(days=4))
    assert mailing.next_run_at == NOW + timedelta(days=3)
    _edit(session, world, mailing, clear_end=True, every="week")
    assert (mailing.end_at, mailing.every, mailing.next_run_at) == (
        None,
        "week",
        NOW + timedelta(days=3),
    )


def test_editing_the_periodicity_of_a_started_mailing(session: Session, world: World) -> None:
    start = NOW - timedelta(days=3)
    mailing = Mailing(
        owner_id=world.users["owner"].id or 0,
        message_id=world.messages["owner"],
        every="day",
        start_at=start,
        status=MailingStatus.started.value,
        last_run_at=NOW - timedelta(hours=1),
        next_run_at=start + timedelta(days=4),
    )
    session.add(mailing)
    session.flush()
    _edit(session, world, mailing, every="week")
    assert mailing.next_run_at == start + timedelta(weeks=1)
    _edit(session, world, mailing, every="month")
    assert mailing.next_run_at == datetime(2030, 4, 7, 9, 0, tzinfo=UTC)


def test_extending_a_finished_mailing_starts_it_again(session: Session, world: World) -> None:
    start = NOW - timedelta(days=10)
    mailing = Mailing(
        owner_id=world.users["owner"].id or 0,
        message_id=world.messages["owner"],
        every="day",
        start_at=start,
        end_at=NOW - timedelta(days=1),
        status=MailingStatus.finished.value,
        last_run_at=NOW - timedelta(days=2),
        next_run_at=None,
    )
    session.add(mailing)
    session.flush()
    _edit(session, world, mailing, end=NOW + timedelta(days=3))
    assert mailing.status == "started"
    assert mailing.next_run_at == start + timedelta(days=11)


def test_edit_changes_message_and_clients(session: Session, world: World) -> None:
    owner = world.users["owner"]
    mailing = _new(session, world)
    extra = clients.add_client(session=session, actor=owner, email="extra@example.com")
    note = messages.add_message(session=session, actor=owner, subject="New", body="Body")
    _edit(session, world, mailing, message_id=note.id, client_ids=[extra.id or 0])
    assert mailing.message_id == note.id
    assert mailings.mailing_client_ids(session=session, mailing=mailing) == [extra.id]
    _edit(session, world, mailing, all_clients=True)
    assert mailings.mailing_client_ids(session=session, mailing=mailing) == sorted(
        [world.clients["owner"], extra.id or 0]
    )


def _passed_created(session: Session, world: World) -> Mailing:
    """A created mailing whose start (with seconds, like a "now" start) passed a while ago:
    disabled before its run began."""
    start = NOW - timedelta(hours=2, seconds=42, microseconds=7)
    mailing = Mailing(
        owner_id=world.users["owner"].id or 0,
        message_id=world.mailing_messages["owner"],
        every="day",
        start_at=start,
        end_at=NOW + timedelta(days=30),
        next_run_at=start,
        is_enabled=False,
    )
    session.add(mailing)
    session.flush()
    session.add(MailingClient(mailing_id=mailing.id or 0, client_id=world.clients["owner"]))
    session.flush()
    return mailing


def _as_the_form_sends_it(mailing: Mailing, client_ids: list[int]) -> dict[str, Any]:
    """Every field of the edit form as it was shown: times to the minute, on Berlin's clock."""
    local = ZoneInfo("Europe/Berlin")
    return {
        "message_id": mailing.message_id,
        "start": mailing.start_at.astimezone(local).replace(second=0, microsecond=0),
        "end": mailing.end_at.astimezone(local).replace(second=0, microsecond=0)
        if mailing.end_at
        else None,
        "clear_end": mailing.end_at is None,
        "every": mailing.every,
        "client_ids": client_ids,
        "clock": Clock(tz="Europe/Berlin", period_seconds=None),
    }


def test_unchanged_values_change_nothing(session: Session, world: World) -> None:
    mailing = _passed_created(session, world)
    before = (mailing.start_at, mailing.end_at, mailing.every, mailing.next_run_at)
    links = session.exec(select(MailingClient).where(MailingClient.mailing_id == mailing.id)).all()
    form = _as_the_form_sends_it(mailing, [world.clients["owner"]])
    # The start has passed by hours: as a change it would be refused (see below); unchanged,
    # the form is accepted and the due run stays where it was.
    _edit(session, world, mailing, **form)
    assert (mailing.start_at, mailing.end_at, mailing.every, mailing.next_run_at) == before
    after = session.exec(select(MailingClient).where(MailingClient.mailing_id == mailing.id)).all()
    assert [(r.mailing_id, r.client_id) for r in after] == [
        (r.mailing_id, r.client_id) for r in links
    ]


def test_an_unchanged_form_keeps_a_started_mailings_due_run(session: Session, world: World) -> None:
    start = NOW - timedelta(days=3)
    due = NOW - timedelta(minutes=30)  # due, not yet claimed: a recomputed schedule would skip it
    mailing = Mailing(
        owner_id=world.users["owner"].id or 0,
        message_id=world.mailing_messages["owner"],
        every="day",
        start_at=start,
        status=MailingStatus.started.value,
        last_run_at=due - timedelta(days=1),
        next_run_at=due,
    )
    session.add(mailing)
    session.flush()
    session.add(MailingClient(mailing_id=mailing.id or 0, client_id=world.clients["owner"]))
    session.flush()
    _edit(session, world, mailing, **_as_the_form_sends_it(mailing, [world.clients["owner"]]))
    assert mailing.next_run_at == due


def test_a_changed_start_in_the_past_is_due_at_once_unless_the_end_passed_too(
    session: Session, world: World, refuse: Any
) -> None:
    """The assignment's start rule: a start that has passed is due at once while the end is
    ahead; a start and an end both in the past leave nothing to send, and are refused."""
    mailing = _passed_created(session, world)
    form = _as_the_form_sends_it(mailing, [world.clients["owner"]])
    over = form | {"start": form["start"] - timedelta(days=2), "end": form["start"]}
    over["clear_end"] = False
    refuse(Invalid, lambda: _edit(session, world, mailing, **over), "both in the past")
    form["start"] -= timedelta(minutes=1)  # another minute: a change, and in the past
    _edit(session, world, mailing, **form)
    assert mailing.start_at == form["start"] and mailing.next_run_at == form["start"]


def test_a_changed_field_next_to_unchanged_ones_is_saved(session: Session, world: World) -> None:
    mailing = _passed_created(session, world)
    start = mailing.start_at
    form = _as_the_form_sends_it(mailing, [world.clients["owner"]])
    _edit(session, world, mailing, **(form | {"every": "week"}))
    assert (mailing.every, mailing.start_at) == ("week", start)
    assert mailing.next_run_at == start  # still a created mailing: the first run is the start


# -- the home page figures ------------------------------------------------------------------


def test_stats_count_total_active_and_unique_emails(session: Session, make_user: Any) -> None:
    ann, bob = (
        make_user("user", email="ann@example.com"),
        make_user("user", email="bob@example.com"),
    )
    admin, manager = make_user("admin"), make_user("manager")

    def client(actor: Any, email: str) -> int:
        return clients.add_client(session=session, actor=actor, email=email).id or 0

    def mailing(actor: Any, ids: list[int], status: str, enabled: bool = True) -> None:
        note = messages.add_message(session=session, actor=actor, subject="S", body="B")
        m = mailings.add_mailing(
            session=session,
            actor=actor,
            message_id=note.id or 0,
            client_ids=ids,
            start=NOW + timedelta(hours=1),
            now=NOW,
            clock=CLOCK,
        )
        m.status, m.is_enabled = status, enabled

    a_ann, a_bob = client(ann, "Shared@Example.com"), client(ann, "bob.client@example.com")
    client(ann, "in-no-mailing@example.com")
    b_shared, b_carol = client(bob, "SHARED@example.com"), client(bob, "carol@example.com")
    mailing(ann, [a_ann, a_bob], "started")  # active
    mailing(ann, [a_bob], "started", enabled=False)  # started but disabled: not active
    mailing(bob, [b_shared, b_carol], "created")  # not started yet: not active
    mailing(bob, [b_carol], "finished")
    session.flush()

    everyone = mailings.Stats(total_mailings=4, active_mailings=1, unique_clients=3)
    assert mailings.stats(session=session) == everyone
    assert mailings.stats(session=session, actor=admin) == everyone
    assert mailings.stats(session=session, actor=manager) == everyone
    assert mailings.stats(session=session, actor=ann) == mailings.Stats(2, 1, 2)
    assert mailings.stats(session=session, actor=bob) == mailings.Stats(2, 0, 2)


def test_stats_on_an_empty_database(session: Session) -> None:
    assert mailings.stats(session=session) == mailings.Stats(0, 0, 0)

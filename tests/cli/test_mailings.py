from __future__ import annotations

from tests.support.cli import FUTURE, LATER, USER1, as_json, fails, new_id, ok
from tests.support.mail import outbox


def test_add_list_show(cli, setup1) -> None:
    mid, (c1, c2) = setup1["mailing"], setup1["clients"]
    rows = as_json(cli("mailing", "list", "--json", as_=USER1))
    assert len(rows) == 1
    row = rows[0]
    assert (row["id"], row["status"], row["every"], row["message_id"], row["clients"]) == (
        mid,
        "created",
        "week",
        setup1["message"],
        2,
    )
    # Times are shown in the configured zone (Europe/Berlin in the fixtures).
    assert row["start_at"] == "2030-06-01T09:00:00+02:00"
    assert row["next_run_at"] == "2030-06-01T09:00:00+02:00"
    table = ok(cli("mailing", "list", as_=USER1)).stdout.splitlines()
    assert table[0].split("\t")[:6] == [
        "id",
        "status",
        "every",
        "next_run_at",
        "message_id",
        "clients",
    ]
    assert "2030-06-01 09:00 CEST" in table[1]

    shown = as_json(cli("mailing", "show", mid, "--json", as_=USER1))
    assert shown["client_ids"] == [c1, c2]
    assert shown["end_at"] is None
    text = ok(cli("mailing", "show", mid, as_=USER1)).stdout
    assert f"client ids   {c1} {c2}" in text
    assert "2030-06-01 09:00 CEST" in text


def test_add_with_listed_clients_and_end(cli, setup1) -> None:
    c1 = setup1["clients"][0]
    mid = new_id(
        cli(
            "mailing",
            "add",
            "--message",
            setup1["message"],
            "--client",
            c1,
            "--start",
            FUTURE,
            "--end",
            LATER,
            "--every",
            "month",
            as_=USER1,
        )
    )
    shown = as_json(cli("mailing", "show", mid, "--json", as_=USER1))
    assert shown["client_ids"] == [c1]
    assert shown["end_at"] == "2030-12-01T09:00:00+01:00"


def _add_due_now(cli, message_id: int, *extra: str):  # type: ignore[no-untyped-def]
    return ok(
        cli(
            "mailing",
            "add",
            "--message",
            message_id,
            "--all-clients",
            "--start",
            "now",
            "--every",
            "once",
            *extra,
            as_=USER1,
        )
    )


def test_add_due_now_sends_at_once(cli, setup1, settings) -> None:
    result = _add_due_now(cli, setup1["message"])
    mailing_id = int(result.stdout.strip())
    assert f"mailing {mailing_id}: sent 2," in result.stderr
    assert sorted(m["To"].addresses[0].addr_spec for m in outbox(settings)) == [
        "ann@example.com",
        "bob@example.com",
    ]
    report = as_json(cli("mailing", "report", mailing_id, "--json", as_=USER1))
    assert (report["sent"], report["attempts"], report["runs"]) == (2, 2, 1)


def test_add_due_now_is_stored_with_no_send(cli, setup1, settings) -> None:
    result = _add_due_now(cli, setup1["message"], "--no-send")
    mailing_id = int(result.stdout.strip())
    assert "added mailing" in result.stderr
    assert f"stored mailing {mailing_id}; it starts by itself" in result.stderr
    assert "sent" not in result.stderr
    # Nothing went out and no run started: the mailing waits, due, for the scheduler.
    assert outbox(settings) == []
    report = as_json(cli("mailing", "report", mailing_id, "--json", as_=USER1))
    assert (report["sent"], report["attempts"], report["runs"]) == (0, 0, 0)
    shown = as_json(cli("mailing", "show", mailing_id, "--json", as_=USER1))
    assert shown["status"] == "created" and shown["last_run_at"] is None
    assert shown["next_run_at"] is not None
    # The next pass sends it: --no-send stored it due, it did not lose the run.
    assert "sent 2," in ok(cli("run-due")).stdout
    assert len(outbox(settings)) == 2


def test_status_filter(cli, setup1) -> None:
    assert len(as_json(cli("mailing", "list", "--status", "created", "--json", as_=USER1))) == 1
    assert as_json(cli("mailing", "list", "--status", "started", "--json", as_=USER1)) == []
    assert as_json(cli("mailing", "list", "--status", "disabled", "--json", as_=USER1)) == []
    fails(cli("mailing", "list", "--status", "paused", as_=USER1), "unknown status 'paused'")


def test_edit(cli, setup1) -> None:
    mid, (c1, _c2) = setup1["mailing"], setup1["clients"]
    m2 = new_id(cli("message", "add", "--subject", "Second", "--body", "Two", as_=USER1))
    ok(
        cli(
            "mailing",
            "edit",
            mid,
            "--message",
            m2,
            "--client",
            c1,
            "--every",
            "day",
            "--start",
            "2030-07-01 08:00",
            "--end",
            LATER,
            as_=USER1,
        )
    )
    shown = as_json(cli("mailing", "show", mid, "--json", as_=USER1))
    assert (shown["message_id"], shown["client_ids"], shown["every"]) == (m2, [c1], "day")
    assert shown["start_at"] == "2030-07-01T08:00:00+02:00"
    assert shown["end_at"] == "2030-12-01T09:00:00+01:00"
    ok(cli("mailing", "edit", mid, "--no-end", "--all-clients", as_=USER1))
    shown = as_json(cli("mailing", "show", mid, "--json", as_=USER1))
    assert shown["end_at"] is None and len(shown["client_ids"]) == 2
    fails(cli("mailing", "edit", mid, "--end", LATER, "--no-end", as_=USER1), "--no-end", code=2)


def test_disable_enable_rm(cli, setup1) -> None:
    mid = setup1["mailing"]
    ok(cli("mailing", "disable", mid, as_=USER1))
    row = as_json(cli("mailing", "list", "--status", "disabled", "--json", as_=USER1))[0]
    assert row["status"] == "created (disabled)" and row["is_enabled"] is False
    ok(cli("mailing", "enable", mid, as_=USER1))
    assert as_json(cli("mailing", "show", mid, "--json", as_=USER1))["status"] == "created"
    ok(cli("mailing", "rm", mid, as_=USER1))
    assert as_json(cli("mailing", "list", "--json", as_=USER1)) == []


def test_manager_sees_and_disables_but_cannot_edit(cli, setup1, snapshot) -> None:
    mid = setup1["mailing"]
    manager = "manager@example.com"
    assert [r["id"] for r in as_json(cli("mailing", "list", "--json", as_=manager))] == [mid]
    ok(cli("mailing", "show", mid, as_=manager))
    before = snapshot()
    fails(
        cli("mailing", "edit", mid, "--every", "day", as_=manager),
        "a manager cannot change mailings",
    )
    fails(cli("mailing", "rm", mid, as_=manager), "a manager cannot change mailings")
    assert snapshot() == before
    ok(cli("mailing", "disable", mid, as_=manager))
    assert as_json(cli("mailing", "show", mid, "--json", as_=USER1))["is_enabled"] is False


def test_stats(cli, setup1) -> None:
    figures = as_json(cli("stats", "--json"))
    assert figures == {"total_mailings": 1, "active_mailings": 0, "unique_clients": 2}
    text = ok(cli("stats", as_=USER1)).stdout
    assert "total mailings" in text and "unique clients" in text


def test_list_counts_each_mailings_clients(cli, setup1) -> None:
    c1 = setup1["clients"][0]
    one = new_id(
        cli(
            "mailing",
            "add",
            "--message",
            setup1["message"],
            "--client",
            c1,
            "--start",
            FUTURE,
            "--every",
            "day",
            as_=USER1,
        )
    )
    rows = as_json(cli("mailing", "list", "--json", as_=USER1))
    assert [(r["id"], r["clients"]) for r in rows] == [(setup1["mailing"], 2), (one, 1)]
    shown = as_json(cli("mailing", "show", one, "--json", as_=USER1))
    assert (shown["clients"], shown["client_ids"]) == (1, [c1])


def _local_minute(delta_minutes: int) -> str:
    """A time in the fixtures' zone, whole minutes from now, as the CLI reads it."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    now = datetime.now(ZoneInfo("Europe/Berlin")).replace(second=0, microsecond=0)
    return (now + timedelta(minutes=delta_minutes)).strftime("%Y-%m-%d %H:%M")


def test_a_start_that_has_passed_sends_to_every_client_at_once(
    cli, setup1, settings, engine
) -> None:
    """The assignment: created with start <= now < end, the send begins with no further
    action; a one-off with no end counts as ending after its run."""
    from pathlib import Path

    outbox = Path(settings.delivery.outbox_dir)
    base = ("mailing", "add", "--message", setup1["message"], "--all-clients")
    cases = [
        ("--start", _local_minute(-90), "--end", _local_minute(90)),
        ("--start", _local_minute(-3 * 24 * 60)),  # a one-off, no end
    ]
    for n, args in enumerate(cases, start=1):
        result = ok(cli(*base, *args, as_=USER1))
        mid = int(result.stdout.strip())
        assert "sent 2," in result.stderr, result.stderr
        shown = as_json(cli("mailing", "show", mid, "--json", as_=USER1))
        assert shown["status"] == "finished"
        assert len(list(outbox.glob("*.eml"))) == 2 * n  # both clients, once each

    both_past = ("--start", _local_minute(-120), "--end", _local_minute(-60))
    fails(
        cli(*base, *both_past, as_=USER1),
        "the start and the end are both in the past: nothing would be sent",
    )
    assert len(list(outbox.glob("*.eml"))) == 4


def test_a_periodic_mailing_created_late_keeps_its_wall_clock_phase(cli, setup1) -> None:
    """A daily at HH:MM created an hour after HH:MM sends now, then tomorrow at HH:MM."""
    from datetime import datetime, timedelta

    start = _local_minute(-60)
    result = ok(
        cli(
            "mailing",
            "add",
            "--message",
            setup1["message"],
            "--all-clients",
            "--start",
            start,
            "--every",
            "day",
            as_=USER1,
        )
    )
    assert "sent 2," in result.stderr
    shown = as_json(cli("mailing", "show", int(result.stdout.strip()), "--json", as_=USER1))
    assert shown["status"] == "started"
    next_run = datetime.fromisoformat(shown["next_run_at"])
    expected = datetime.strptime(start, "%Y-%m-%d %H:%M") + timedelta(days=1)
    assert next_run.replace(tzinfo=None) == expected  # same wall-clock time, the next day

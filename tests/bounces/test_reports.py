"""Bounces and complaints in `mailing report` (text, JSON, CSV), on the mailing page and its
chart, and the bounce mailbox in `mailctl status`."""

from __future__ import annotations

import csv
import io
import json
import re

from tests.bounces import corpus
from tests.bounces.test_import import _envelopes, _ok
from tests.support.smtp import Sink, free_port
from tests.support.web import logged_in


def _bounced_mailing(cli, tmp_path, sink, smtp_settings, make_mailing, send_all):
    settings = smtp_settings(sink.port, bounces_domain="bounces.example.org")
    clients = ["ann@example.com", "bob@example.com", "cy@example.com", "dee@example.com"]
    mailing_id = make_mailing(clients)
    assert send_all(settings) == 4
    senders = _envelopes(sink)
    (tmp_path / "1.eml").write_bytes(corpus.postfix("ann@example.com", senders["ann@example.com"]))
    (tmp_path / "2.eml").write_bytes(corpus.arf("bob@example.com", senders["bob@example.com"]))
    _ok(cli("bounces", "import", tmp_path / "1.eml", tmp_path / "2.eml"))
    return mailing_id


def test_the_report_counts_bounces_and_complaints_per_run(
    cli, owner, tmp_path, sink: Sink, smtp_settings, make_mailing, send_all
) -> None:
    mailing_id = _bounced_mailing(cli, tmp_path, sink, smtp_settings, make_mailing, send_all)
    data = json.loads(_ok(cli("mailing", "report", mailing_id, "--json", as_=owner.email)).stdout)
    assert data["sent"] == 4  # a bounced message was sent all the same
    assert (data["bounced"], data["bounced_hard"], data["complaints"]) == (1, 1, 1)
    assert (data["bounce_rate"], data["complaint_rate"]) == (0.25, 0.25)
    (run,) = data["runs_bounces"]
    assert (run["sent"], run["bounced"], run["complaints"], run["bounce_rate"]) == (4, 1, 1, 0.25)

    text = _ok(cli("mailing", "report", mailing_id, "--csv", tmp_path / "log.csv", as_=owner.email))
    assert f"run {run['run_id']}: sent 4, bounced 1 (25.0%), complaints 1 (25.0%)" in text.stdout
    assert re.search(r"^bounce rate +0\.25$", text.stdout, re.M)
    assert re.search(r"^complaints +1$", text.stdout, re.M)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "log.csv").read_text())))
    assert [r["status"] for r in rows].count("sent") == 4
    later = {r["email"]: r for r in rows if r["status"] != "sent"}
    assert later["ann@example.com"]["status"] == "bounce-hard"
    assert later["ann@example.com"]["response"].startswith("5.1.1 ")
    assert later["bob@example.com"]["status"] == "complaint"


def test_the_mailing_page_and_its_chart_show_them(
    cli, client, owner, tmp_path, sink: Sink, smtp_settings, make_mailing, send_all
) -> None:
    mailing_id = _bounced_mailing(cli, tmp_path, sink, smtp_settings, make_mailing, send_all)
    logged_in(client, owner.email)
    page = client.get(f"/mailings/{mailing_id}")
    assert page.status_code == 200
    text = " ".join(page.text.split())
    assert "Bounced <strong>1</strong> (25.0%)" in text
    assert "(1 hard, 0 soft)" in text
    assert "complaints <strong>1</strong> (25.00%)" in text
    assert 'data-label="Bounced"><span>1 <span class="small text-body-secondary">(25.0%)' in text
    assert "<title>" in page.text and ": 1 bounced</title>" in page.text
    assert ": 1 complained</title>" in page.text


def test_status_shows_the_bounce_mailbox(cli, engine, smtp_settings) -> None:
    plain = _ok(cli("status"))
    assert "bounce mailbox:\n  none configured" in plain.stdout
    assert json.loads(_ok(cli("status", "--json")).stdout)["bounce_mailbox"] is None
    port = free_port()
    smtp_settings(
        1,
        bounces_host="127.0.0.1",
        bounces_port=port,
        bounces_username="b@example.org",
        bounces_password="x",
        bounces_timeout=2,
    )
    assert "not fetched yet" in _ok(cli("status")).stdout
    assert cli("bounces", "fetch").exit_code == 1
    shown = _ok(cli("status")).stdout
    assert f"  imap://b@example.org@127.0.0.1:{port}/INBOX  every 300s" in shown
    assert "FAILED: bounce mailbox" in shown and "connection refused" in shown
    data = json.loads(_ok(cli("status", "--json")).stdout)["bounce_mailbox"]
    assert data["last_error"].endswith("connection refused")
    assert data["last_ok_at"] is None and data["last_fetch_at"]

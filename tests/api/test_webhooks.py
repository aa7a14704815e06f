"""Outgoing webhooks against real HTTP receivers on 127.0.0.1.

The receiver checks each delivery the way README.md ("Webhooks") tells a receiver to: the
`Mailctl-Signature: t=<unix>,v1=<hex>` header is HMAC-SHA256 with the webhook's secret over
"<t>.<raw body>", compared in constant time, and t is close to now. Failing receivers (5xx, a
silent one) show the retries with back-off, the log of response codes, and the disabling.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from mailctl.config import Settings
from mailctl.db import session_scope, utcnow
from mailctl.errors import Invalid, NotFound
from mailctl.models import User, Webhook, WebhookDelivery
from mailctl.sending.links import Links
from mailctl.services import events, preferences, signups, webhooks
from mailctl.services.clients import unsubscribe
from mailctl.services.tags import set_tag_public
from mailctl.tokens import sign
from tests.support import terminal
from tests.support.cli import USER1, as_json, fails, ok


class Receiver:
    """An HTTP server that answers `status` (after `delay` seconds) and keeps what came."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status, self.delay = status, delay
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.paths.append(self.path)
                receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                """A sender that hung up before the answer (it read only the status, or
                timed out) is what some tests do on purpose; socketserver would print its
                traceback to sys.stderr, which is the in-process CLI's stderr under test.
                Any other error is printed as before."""
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def verified(secret: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """What the README asks of a receiver; the event, or AssertionError."""
    fields = dict(part.split("=", 1) for part in headers["mailctl-signature"].split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256)
    assert hmac.compare_digest(expected.hexdigest(), fields["v1"]), "bad signature"
    assert abs(time.time() - int(fields["t"])) < 300, "stale timestamp"
    assert headers["content-type"] == "application/json"
    event = json.loads(body)
    assert headers["mailctl-event"] == event["event"]
    return event  # type: ignore[no-any-return]


def _owner(engine: Engine, email: str = "ann@example.com") -> User:
    with session_scope(engine) as s:
        user = User(email=email, role="user", is_verified=True)
        s.add(user)
        s.flush()
        return user


@pytest.fixture(autouse=True)
def receivers_on_this_host(mailctl_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The receivers here listen on 127.0.0.1, which a webhook may reach only when allowed."""
    monkeypatch.setenv("MAILCTL_API_WEBHOOK_PRIVATE_ADDRESSES", "true")


def _hook(engine: Engine, user: User, url: str, events_: tuple[str, ...] = ()) -> tuple[int, str]:
    with session_scope(engine) as s:
        made = webhooks.add_webhook(
            session=s, actor=user, url=url, events=events_, allow_private=True
        )
        return made.webhook.id or 0, made.secret


def _deliveries(engine: Engine) -> list[WebhookDelivery]:
    with session_scope(engine, readonly=True) as s:
        return list(s.exec(select(WebhookDelivery).order_by(WebhookDelivery.id)).all())


class Counters:
    def __init__(self) -> None:
        self.n: dict[str, int] = {}

    def bump(self, key: str, window: int) -> int:
        self.n[key] = self.n.get(key, 0) + 1
        return self.n[key]

    def count(self, key: str) -> int:
        return self.n.get(key, 0)

    def forget(self, key: str) -> None:
        self.n.pop(key, None)


def test_client_events_reach_a_receiver_that_verifies_the_signature(
    engine: Engine, settings: Settings, receiver: Receiver
) -> None:
    ann = _owner(engine)
    bob = _owner(engine, "bob@example.com")
    hook_id, secret = _hook(engine, ann, receiver.url)
    _hook(engine, bob, receiver.url + "?bob")  # another user's: never sent ann's events
    _hook(engine, ann, receiver.url + "?runs", ("run.finished",))  # not for client events
    links = Links(base_url="https://news.example.org", secret="k" * 32, max_age=3600)
    with session_scope(engine) as s:
        form = signups.add_form(session=s, actor=ann, tags=["news"], title="News")
        asked = signups.request_signup(
            session=s,
            links=links,
            counters=Counters(),
            public_id=form.public_id,
            email="zoe@example.com",
            full_name="Zoe",
        )
    assert asked.email is not None
    token = asked.email.link.rsplit("/", 1)[1]
    with session_scope(engine) as s:
        zoe, _ = signups.confirm_signup(session=s, links=links, token=token)
        assert zoe is not None
        zoe_id = zoe.id or 0
        set_tag_public(session=s, actor=ann, name="news", public=True)
    with session_scope(engine) as s:
        preferences.set_preferences(
            session=s, token=sign(links.secret, "unsubscribe", zoe_id), secret=links.secret, keep=[]
        )
        unsubscribe(session=s, token=sign(links.secret, "unsubscribe", zoe_id), secret=links.secret)
    sent = webhooks.deliver_due(engine=engine, settings=settings)
    assert sent.delivered == 3 and sent.failed == 0
    assert receiver.paths == ["/hook"] * 3  # not bob's webhook, nor ann's for runs
    got = [verified(secret, h, b) for h, b in receiver.got]
    assert [(e["event"], e["data"]["via"], e["data"]["tags"]) for e in got] == [
        ("client.subscribed", "signup", ["news"]),
        ("client.unsubscribed", "preferences", ["news"]),
        ("client.unsubscribed", "link", []),
    ]
    assert {e["data"]["email"] for e in got} == {"zoe@example.com"}
    assert len({e["id"] for e in got}) == 3
    # A tampered body or another secret fails the receiver's check.
    headers, body = receiver.got[0]
    with pytest.raises(AssertionError, match="bad signature"):
        verified(secret, headers, body.replace(b"zoe", b"eve"))
    with pytest.raises(AssertionError, match="bad signature"):
        verified("whsec_other", headers, body)
    rows = _deliveries(engine)
    assert [(r.webhook_id, r.state, r.last_status, r.attempts) for r in rows] == [
        (hook_id, "delivered", 200, 1)
    ] * 3
    assert webhooks.deliver_due(engine=engine, settings=settings).busy is False  # sent once


def test_run_finished_is_sent_by_run_due(cli, make_user, receiver: Receiver, engine) -> None:  # type: ignore[no-untyped-def]
    make_user("user", email=USER1)
    secret = ok(
        cli("webhook", "add", receiver.url, "--event", "run.finished", as_=USER1)
    ).stdout.strip()
    assert secret.startswith("whsec_")
    ok(cli("client", "add", "c1@example.com", as_=USER1))
    ok(cli("message", "add", "--subject", "Hi", "--body", "Hello", as_=USER1))
    ok(
        cli(
            "mailing",
            "add",
            "--message",
            "1",
            "--all-clients",
            "--start",
            "+1h",
            "--every",
            "once",
            as_=USER1,
        )
    )
    ok(cli("mailing", "send", "1", as_=USER1))
    result = ok(cli("run-due"))
    assert "webhooks: 1 delivered" in result.stderr
    (event,) = [verified(secret, h, b) for h, b in receiver.got]
    assert event["event"] == "run.finished"
    assert event["data"]["mailing_id"] == 1 and event["data"]["counts"] == {"sent": 1}
    assert event["data"]["finished_at"] and event["data"]["recipients"] == 1
    listed = as_json(cli("webhook", "list", "--json", as_=USER1))
    assert listed[0]["last_status"] == 200 and listed[0]["events"] == "run.finished"
    assert as_json(cli("webhook", "log", "1", "--json", as_=USER1))[0]["state"] == "delivered"


def test_retries_back_off_and_a_failing_webhook_is_disabled(
    engine: Engine, settings: Settings
) -> None:
    failing = Receiver(status=503)
    try:
        ann = _owner(engine)
        hook_id, _ = _hook(engine, ann, failing.url)
        strict = settings.with_overrides("api", webhook_disable_after=3, webhook_max_attempts=10)
        with session_scope(engine) as s:
            events.emit(s, ann.id or 0, "client.unsubscribed", {"n": 1})
            events.emit(s, ann.id or 0, "client.unsubscribed", {"n": 2})
        first = webhooks.deliver_due(engine=engine, settings=strict)
        assert (first.delivered, first.failed, first.disabled) == (0, 2, 0)
        rows = _deliveries(engine)
        assert [(r.state, r.attempts, r.last_status) for r in rows] == [("pending", 1, 503)] * 2
        wait = rows[0].next_attempt_at - utcnow()
        # retry_first_seconds, 30 by default
        assert timedelta(seconds=25) < wait <= timedelta(seconds=30)
        assert webhooks.deliver_due(engine=engine, settings=strict).busy is False  # not yet
        later = utcnow() + timedelta(seconds=31)
        third = webhooks.deliver_due(engine=engine, settings=strict, now=later)
        assert third.failed == 1 and third.disabled == 1  # the third failure in a row
        rows = _deliveries(engine)
        assert [(r.state, r.attempts) for r in rows] == [("failed", 2), ("failed", 1)]
        assert rows[1].last_error == "webhook disabled"
        with session_scope(engine, readonly=True) as s:
            hook = s.get(Webhook, hook_id)
            assert (
                hook is not None
                and not hook.is_enabled
                and "3 failed tries" in hook.disabled_reason
            )
            events.emit(s, ann.id or 0, "client.unsubscribed", {"n": 3})
            s.flush()
            assert len(s.exec(select(WebhookDelivery)).all()) == 2  # a disabled one gets none
        assert len(failing.got) == 3
    finally:
        failing.close()


def test_a_silent_receiver_costs_the_timeout_then_a_retry(
    engine: Engine, settings: Settings
) -> None:
    silent = Receiver(delay=5)
    try:
        ann = _owner(engine)
        _hook(engine, ann, silent.url)
        with session_scope(engine) as s:
            events.emit(s, ann.id or 0, "client.subscribed", {})
        quick = settings.with_overrides("api", webhook_timeout_seconds=0.5)
        began = time.monotonic()
        summary = webhooks.deliver_due(engine=engine, settings=quick)
        assert time.monotonic() - began < 4 and summary.failed == 1
        (row,) = _deliveries(engine)
        assert row.state == "pending" and row.last_error == "timed out" and row.last_status is None
    finally:
        silent.close()


@pytest.mark.parametrize(
    "url,message",
    [
        ("ftp://example.com/x", "http:// or https://"),
        ("https:///nohost", "http:// or https://"),
        ("https://user:pw@example.com/", "user name or password"),
        ("https://example.com/a b", "spaces"),
        ("https://example.com:99999/", "bad port"),
        ("https://example.com/" + "x" * 2000, "too long"),
    ],
)
def test_only_http_urls(engine: Engine, url: str, message: str) -> None:
    ann = _owner(engine)
    with session_scope(engine) as s, pytest.raises(Invalid, match=message):
        webhooks.add_webhook(session=s, actor=ann, url=url)
    with session_scope(engine) as s, pytest.raises(Invalid, match="unknown event"):
        webhooks.add_webhook(session=s, actor=ann, url="https://x.example/", events=["all"])


def test_webhook_commands_piped_and_on_a_terminal(cli, make_user, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    make_user("user", email=USER1)
    make_user("user", email="user2@example.com")
    ok(cli("webhook", "add", receiver.url, as_=USER1))
    piped = ok(cli("webhook", "list", as_=USER1)).stdout.splitlines()
    assert piped[0] == "id\turl\tevents\tenabled\tfailures\tlast_status\tnote"
    assert receiver.url in piped[1] and "run.finished message.bounced" in piped[1]
    screen = terminal.run(["--as", USER1, "webhook", "list"], colour=False).assert_clean()
    assert "127.0.0.1" in screen.text and "─" in screen.text
    tested = ok(cli("webhook", "test", "1", as_=USER1))
    assert "delivered: the receiver answered 200" in tested.stdout
    (headers, body) = receiver.got[0]
    assert json.loads(body)["event"] == "webhook.test"
    receiver.status = 500
    fails(cli("webhook", "test", "1", as_=USER1), "not delivered: answered 500")
    fails(cli("webhook", "test", "1", as_="user2@example.com"), "webhook 1 not found")
    fails(cli("webhook", "rm", "1", as_="user2@example.com"), "webhook 1 not found")
    fails(cli("webhook", "add", "ftp://x", as_=USER1), "http:// or https://")
    ok(cli("webhook", "rm", "1", as_=USER1))
    assert ok(cli("webhook", "list", as_=USER1)).stdout.splitlines()[1:] == []


def test_another_users_webhook_is_not_found(engine: Engine) -> None:
    ann, bob = _owner(engine), _owner(engine, "bob@example.com")
    hook_id, _ = _hook(engine, ann, "https://ann.example/hook")
    with session_scope(engine) as s:
        for call in (webhooks.get_webhook, webhooks.remove_webhook, webhooks.queue_test):
            with pytest.raises(NotFound):
                call(session=s, actor=bob, webhook_id=hook_id)
        assert webhooks.list_webhooks(session=s, actor=bob) == []


def test_private_addresses_are_refused_unless_allowed(
    cli, make_user, receiver: Receiver, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A user's webhook must not make the server reach this host or the LAN by default: at
    `webhook add` (one line, exit 1) and again at each delivery (a name may move)."""
    make_user("user", email=USER1)
    ok(cli("webhook", "add", receiver.url, as_=USER1))  # allowed by the fixture
    monkeypatch.setenv("MAILCTL_API_WEBHOOK_PRIVATE_ADDRESSES", "false")
    for url in (
        "http://127.0.0.1:9/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest",
        "http://[::1]:8080/x",
        "http://localhost/x",
    ):
        fails(cli("webhook", "add", url, as_=USER1), "loopback or private address")
    with session_scope(engine) as s, pytest.raises(Invalid, match="private"):
        webhooks.add_webhook(session=s, actor=_owner(engine), url="http://192.168.1.1/")
    fails(cli("webhook", "test", "1", as_=USER1), "not delivered: refused: 127.0.0.1 is a loopback")
    assert receiver.got == []  # the stored hook to 127.0.0.1 is refused at delivery
    (row,) = _deliveries(engine)
    assert row.last_error.startswith("refused: 127.0.0.1 is a loopback or private address")


def test_a_second_unsubscribe_click_keeps_the_first_time_and_sends_no_second_event(
    engine: Engine, settings: Settings, receiver: Receiver
) -> None:
    from mailctl.models import Client

    ann = _owner(engine)
    _hook(engine, ann, receiver.url, ("client.unsubscribed",))
    with session_scope(engine) as s:
        zoe = Client(owner_id=ann.id or 0, email="zoe@example.com", email_key="zoe@example.com")
        s.add(zoe)
        s.flush()
        zoe_id = zoe.id or 0
    token = sign("k" * 32, "unsubscribe", zoe_id)
    with session_scope(engine) as s:
        first = unsubscribe(session=s, token=token, secret="k" * 32)
        assert first is not None
        stamped = first.unsubscribed_at
    time.sleep(0.01)
    with session_scope(engine) as s:
        second = unsubscribe(session=s, token=token, secret="k" * 32)
        assert second is not None and second.unsubscribed_at == stamped
    assert webhooks.deliver_due(engine=engine, settings=settings).delivered == 1
    assert len(receiver.got) == 1

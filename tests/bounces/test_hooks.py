"""The relays' webhooks: each with a valid signature, a forged one, a replay, a stale one and a
malformed body; a valid bounce suppresses the address like a DSN does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from starlette.testclient import TestClient

from mailctl.config import load_settings
from tests.bounces.test_import import _envelopes, _suppressed
from tests.support.ledger import ledger
from tests.support.smtp import Sink

MAILGUN_KEY, GENERIC_KEY = "key-mailgun-test", "generic-test-secret"


@pytest.fixture
def sent(engine, sink: Sink, smtp_settings, make_mailing, send_all) -> Callable[..., dict]:
    """sent(**hooks_env): a mailing sent to ann and bob (their VERP return paths, by
    address) and the settings with these [hooks] keys."""

    def send(**env: object) -> dict:
        settings = smtp_settings(
            sink.port,
            bounces_domain="bounces.example.org",
            **{f"hooks_{k}": v for k, v in env.items()},
        )
        mailing_id = make_mailing(["ann@example.com", "bob@example.com"])
        assert send_all(settings) == 2
        return {"mailing_id": mailing_id, "senders": _envelopes(sink)}

    return send


@pytest.fixture
def panel(engine) -> Iterator[Callable[[], TestClient]]:
    """A panel built with the settings in the environment now (after `sent`)."""
    from mailctl.web.app import create_app

    clients: list[TestClient] = []

    def make() -> TestClient:
        client = TestClient(create_app(load_settings()), follow_redirects=False)
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _refused(response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


# -- Amazon SES through SNS -------------------------------------------------------------------


@pytest.fixture
def sns_signer(tmp_path: Path) -> dict:
    """An RSA key and a self-signed certificate standing in for Amazon's, trusted through
    hooks.sns_certificate_file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "sns.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return {"key": key, "cert_file": str(path)}


def _sns(key, kind: str = "Notification", *, version: str = "2", age: float = 0, **fields):
    message = {
        "Type": kind,
        "MessageId": fields.pop("MessageId", f"m-{time.time_ns()}"),
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-bounces",
        "Timestamp": (datetime.now(UTC) - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%S.%f")[
            :-3
        ]
        + "Z",
        "SignatureVersion": version,
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem",
        **fields,
    }
    names = (
        ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
        if kind == "Notification"
        else ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
    )
    canonical = "".join(f"{n}\n{message[n]}\n" for n in names if n in message).encode()
    digest = hashes.SHA256() if version == "2" else hashes.SHA1()
    message["Signature"] = base64.b64encode(
        key.sign(canonical, padding.PKCS1v15(), digest)
    ).decode()
    return message


def _ses_bounce(source: str, email: str, *, permanent: bool = True) -> str:
    return json.dumps(
        {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": "Permanent" if permanent else "Transient",
                "bounceSubType": "General",
                "feedbackId": f"fb-{email}-{permanent}",
                "bouncedRecipients": [
                    {
                        "emailAddress": email,
                        "status": "5.1.1" if permanent else "4.4.7",
                        "action": "failed",
                        "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                    }
                ],
            },
            "mail": {"source": source, "messageId": f"ses-{email}", "destination": [email]},
        }
    )


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_through_sns(sent, panel, engine, owner, sns_signer, version: str) -> None:
    world = sent(sns_certificate_file=sns_signer["cert_file"])
    client = panel()
    key = sns_signer["key"]
    bob_path = world["senders"]["bob@example.com"]
    # The recipient rewritten by the relay: the return path names the row all the same.
    good = _sns(key, version=version, Message=_ses_bounce(bob_path, "robert@example.com"))
    response = client.post("/hooks/ses", content=json.dumps(good))
    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 1
    assert _suppressed(engine, owner.id) == {"bob@example.com": "bounce"}
    assert ledger(engine, world["mailing_id"])["bob@example.com"]["bounce"] == "hard"

    _refused(client.post("/hooks/ses", content=json.dumps(good)), 409, "replayed")
    forged = dict(good, Message=_ses_bounce(bob_path, "ann@example.com"))
    _refused(client.post("/hooks/ses", content=json.dumps(forged)), 403, "forged")
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wrong = _sns(other_key, Message=_ses_bounce(bob_path, "ann@example.com"))
    _refused(client.post("/hooks/ses", content=json.dumps(wrong)), 403, "forged")
    stale = _sns(key, age=600, Message=_ses_bounce(bob_path, "ann@example.com"))
    _refused(client.post("/hooks/ses", content=json.dumps(stale)), 403, "stale")
    unsigned = {k: v for k, v in good.items() if k != "Signature"}
    _refused(client.post("/hooks/ses", content=json.dumps(unsigned)), 401, "unsigned")
    _refused(client.post("/hooks/ses", content=b"{not json"), 400, "not JSON")
    bad_message = _sns(key, Message="[1, 2")
    _refused(client.post("/hooks/ses", content=json.dumps(bad_message)), 400, "not JSON")
    assert _suppressed(engine, owner.id) == {"bob@example.com": "bounce"}  # ann untouched

    complaint = json.dumps(
        {
            "notificationType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": "ann@example.com"}],
                "complaintFeedbackType": "abuse",
                "feedbackId": "c1",
            },
            "mail": {"source": world["senders"]["ann@example.com"], "messageId": "ses-ann"},
        }
    )
    assert (
        client.post("/hooks/ses", content=json.dumps(_sns(key, Message=complaint))).json()[
            "recorded"
        ]
        == 1
    )
    assert _suppressed(engine, owner.id)["ann@example.com"] == "complaint"
    delivery = json.dumps({"notificationType": "Delivery", "mail": {"messageId": "d"}})
    assert (
        client.post("/hooks/ses", content=json.dumps(_sns(key, Message=delivery))).json()["ignored"]
        == 1
    )


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        _Recorder.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_sns_subscription_is_confirmed_only_at_amazon(sent, panel, sns_signer, caplog) -> None:
    sent(sns_certificate_file=sns_signer["cert_file"])
    client = panel()
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/confirm?Token=x"
        message = _sns(
            sns_signer["key"],
            "SubscriptionConfirmation",
            Message="You have chosen to subscribe",
            SubscribeURL=url,
            Token="x" * 20,
        )
        with caplog.at_level("WARNING", logger="mailctl.hooks"):
            response = client.post("/hooks/ses", content=json.dumps(message))
        assert response.status_code == 200
        assert "not confirmed" in response.json()["note"]
        assert _Recorder.hits == []  # never fetched: not an amazonaws.com https URL
        assert "not Amazon's" in caplog.text
    finally:
        server.shutdown()
        server.server_close()


def test_sns_certificates_only_from_amazon(sent, panel, sns_signer) -> None:
    """Without a trusted certificate file, a SigningCertURL off amazonaws.com is refused
    before anything is fetched."""
    sent()
    client = panel()
    for url in (
        "http://sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem",
        "https://127.0.0.1/cert.pem",
    ):
        message = _sns(sns_signer["key"], Message="{}", SigningCertURL=url)
        _refused(client.post("/hooks/ses", content=json.dumps(message)), 403, "SigningCertURL")


# -- Postmark ---------------------------------------------------------------------------------


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_postmark(sent, panel, engine, owner) -> None:
    sent(postmark_username="pm", postmark_password="pm-secret")
    client = panel()
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    event = {
        "RecordType": "Bounce",
        "ID": 4323372036854775807,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Email": "ann@example.com",
        "BouncedAt": now,
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist",
    }
    body = json.dumps(event)
    response = client.post("/hooks/postmark", content=body, headers=_basic("pm", "pm-secret"))
    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 1
    assert _suppressed(engine, owner.id) == {"ann@example.com": "bounce"}
    _refused(
        client.post("/hooks/postmark", content=body, headers=_basic("pm", "pm-secret")),
        409,
        "replayed",
    )
    other = json.dumps(dict(event, ID=1, Email="bob@example.com"))
    _refused(
        client.post("/hooks/postmark", content=other, headers=_basic("pm", "x")), 403, "forged"
    )
    _refused(client.post("/hooks/postmark", content=other), 401, "unsigned")
    old = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    stale = json.dumps(dict(event, ID=2, Email="bob@example.com", BouncedAt=old))
    _refused(
        client.post("/hooks/postmark", content=stale, headers=_basic("pm", "pm-secret")),
        403,
        "stale",
    )
    _refused(
        client.post("/hooks/postmark", content=b"[]", headers=_basic("pm", "pm-secret")),
        400,
        "RecordType",
    )
    spam = json.dumps(
        {
            "RecordType": "SpamComplaint",
            "ID": 3,
            "Type": "SpamComplaint",
            "Email": "bob@example.com",
        }
    )
    assert (
        client.post("/hooks/postmark", content=spam, headers=_basic("pm", "pm-secret")).json()[
            "recorded"
        ]
        == 1
    )
    assert _suppressed(engine, owner.id)["bob@example.com"] == "complaint"


# -- SendGrid ---------------------------------------------------------------------------------


def test_sendgrid(sent, panel, engine, owner) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    sent(sendgrid_public_key=public)
    client = panel()

    def signed(body: bytes, at: float | None = None, signer=key) -> dict[str, str]:
        stamp = str(int(at if at is not None else time.time()))
        sig = signer.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        }

    events = [
        {
            "email": "ann@example.com",
            "event": "bounce",
            "type": "bounce",
            "status": "5.1.1",
            "reason": "550 5.1.1 user unknown",
            "sg_event_id": "ev-1",
            "timestamp": int(time.time()),
        },
        {"email": "bob@example.com", "event": "delivered", "sg_event_id": "ev-2"},
        {"email": "bob@example.com", "event": "deferred", "sg_event_id": "ev-3", "status": "4.2.2"},
    ]
    body = json.dumps(events).encode()
    headers = signed(body)
    response = client.post("/hooks/sendgrid", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert (response.json()["recorded"], response.json()["ignored"]) == (2, 1)
    assert _suppressed(engine, owner.id) == {"ann@example.com": "bounce"}  # bob: one soft
    _refused(client.post("/hooks/sendgrid", content=body, headers=headers), 409, "replayed")
    tampered = body.replace(b"ann@", b"bob@")
    _refused(client.post("/hooks/sendgrid", content=tampered, headers=headers), 403, "forged")
    other = ec.generate_private_key(ec.SECP256R1())
    _refused(
        client.post("/hooks/sendgrid", content=tampered, headers=signed(tampered, signer=other)),
        403,
        "forged",
    )
    _refused(
        client.post(
            "/hooks/sendgrid", content=tampered, headers=signed(tampered, time.time() - 900)
        ),
        403,
        "stale",
    )
    _refused(client.post("/hooks/sendgrid", content=tampered), 401, "unsigned")
    _refused(client.post("/hooks/sendgrid", content=b"{}", headers=signed(b"{}")), 400, "array")


# -- Mailgun ----------------------------------------------------------------------------------


def _mailgun(event: dict, *, token: str, at: float | None = None, key: str = MAILGUN_KEY) -> bytes:
    stamp = str(int(at if at is not None else time.time()))
    sig = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps(
        {"signature": {"timestamp": stamp, "token": token, "signature": sig}, "event-data": event}
    ).encode()


def test_mailgun(sent, panel, engine, owner) -> None:
    world = sent(mailgun_signing_key=MAILGUN_KEY)
    client = panel()
    failed = {
        "event": "failed",
        "severity": "permanent",
        "id": "mg-1",
        "recipient": "ann@example.com",
        "delivery-status": {"code": 550, "message": "5.1.1 no such user", "description": ""},
        "envelope": {"sender": world["senders"]["ann@example.com"]},
    }
    body = _mailgun(failed, token="t" * 50)
    response = client.post("/hooks/mailgun", content=body)
    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 1
    assert _suppressed(engine, owner.id) == {"ann@example.com": "bounce"}
    assert ledger(engine, world["mailing_id"])["ann@example.com"]["bounce"] == "hard"
    _refused(client.post("/hooks/mailgun", content=body), 409, "replayed")
    bob = dict(failed, recipient="bob@example.com", id="mg-2", envelope={})
    _refused(
        client.post("/hooks/mailgun", content=_mailgun(bob, token="u" * 50, key="x")), 403, "forged"
    )
    _refused(
        client.post("/hooks/mailgun", content=_mailgun(bob, token="v" * 50, at=time.time() - 400)),
        403,
        "stale",
    )
    _refused(
        client.post("/hooks/mailgun", content=json.dumps({"event-data": bob})), 401, "unsigned"
    )
    payload = json.loads(_mailgun(bob, token="w" * 50))
    del payload["event-data"]
    _refused(client.post("/hooks/mailgun", content=json.dumps(payload)), 400, "event-data")
    temporary = dict(bob, severity="temporary", id="mg-3")
    assert (
        client.post("/hooks/mailgun", content=_mailgun(temporary, token="y" * 50)).json()[
            "recorded"
        ]
        == 1
    )
    assert "bob@example.com" not in _suppressed(engine, owner.id)  # one soft bounce


# -- the generic JSON webhook -----------------------------------------------------------------


def _generic(body: bytes, *, at: float | None = None, key: str = GENERIC_KEY) -> dict[str, str]:
    stamp = str(int(at if at is not None else time.time()))
    sig = hmac.new(key.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Mailctl-Timestamp": stamp, "X-Mailctl-Signature": f"sha256={sig}"}


def test_generic(sent, panel, engine, owner) -> None:
    world = sent(generic_secret=GENERIC_KEY)
    client = panel()
    body = json.dumps(
        {
            "events": [
                {
                    "id": "e1",
                    "type": "soft",
                    "email": "ann@example.com",
                    "status": "4.2.2",
                    "return_path": world["senders"]["ann@example.com"],
                },
                {"id": "e2", "type": "complaint", "email": "bob@example.com"},
            ]
        }
    ).encode()
    headers = _generic(body)
    response = client.post("/hooks/generic", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 2
    assert _suppressed(engine, owner.id) == {"bob@example.com": "complaint"}
    assert ledger(engine, world["mailing_id"])["ann@example.com"]["bounce"] == "soft"
    _refused(client.post("/hooks/generic", content=body, headers=headers), 409, "replayed")
    other = body.replace(b'"soft"', b'"hard"')
    _refused(client.post("/hooks/generic", content=other, headers=headers), 403, "forged")
    _refused(
        client.post("/hooks/generic", content=other, headers=_generic(other, key="k")),
        403,
        "forged",
    )
    _refused(
        client.post("/hooks/generic", content=other, headers=_generic(other, at=time.time() - 301)),
        403,
        "stale",
    )
    _refused(client.post("/hooks/generic", content=other), 401, "unsigned")
    for bad, words in (
        (b"not json", "not JSON"),
        (b"[1]", "not a bounce event"),
        (b'{"id": "x", "type": "nice", "email": "a@b.c"}', "unknown event type"),
        (b'{"type": "hard", "email": "a@b.c"}', "needs an id"),
        (b'{"id": "y", "type": "hard", "email": ""}', "no recipient"),
    ):
        _refused(client.post("/hooks/generic", content=bad, headers=_generic(bad)), 400, words)
    huge = b" " * 1_000_001
    response = client.post("/hooks/generic", content=huge, headers=_generic(huge))
    assert response.status_code == 413
    # More soft bounces of the same message (found by address now) do not add up.
    for n in (2, 3):
        more = json.dumps({"id": f"s{n}", "type": "soft", "email": "ann@example.com"}).encode()
        assert (
            client.post("/hooks/generic", content=more, headers=_generic(more)).status_code == 200
        )
    assert "ann@example.com" not in _suppressed(engine, owner.id)


def test_an_endpoint_without_its_key_does_not_exist(sent, panel) -> None:
    sent()
    client = panel()
    for path in ("ses", "postmark", "sendgrid", "mailgun", "generic"):
        response = client.post(f"/hooks/{path}", content=b"{}")
        if path == "ses":  # SNS has a certificate to check before it has a key to lack
            assert response.status_code in (400, 401), response.text
            continue
        _refused(response, 404, "webhook is configured")
    assert client.get("/hooks/generic").status_code == 405

"""Sample data for the quick start: users of every role, clients, messages, mailings, posts."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session

from mailctl.db import utcnow
from mailctl.errors import Conflict
from mailctl.schedule import Clock
from mailctl.services import blog, clients, mailings, messages, users

DEMO_PASSWORD = "demo-password"
DEMO_LOGINS = (
    ("admin@demo.example", "admin"),
    ("ann@demo.example", "user"),
    ("bob@demo.example", "user"),
    ("manager@demo.example", "manager"),
    ("editor@demo.example", "editor"),
)
NAMES = (
    "Olga Petrova",
    "Ivan Sidorov",
    "Marie Curie",
    "Ada Lovelace",
    "Jean Dupont",
    "Zoë Müller",
    "Li Wei",
    "Sam Taylor",
    "Ana García",
    "Yuki Tanaka",
)

POSTS = (
    ("Why we built mailctl", "A mailing service you run yourself, from the shell or the browser."),
    ("Five tips for better newsletters", "Write for one reader. Keep it short. Send on time."),
    ("Deliverability without the magic", "Every attempt is logged with the server's answer."),
    ("Scheduling that respects your clock", "Daily runs keep their local time across DST."),
)


def _ascii(word: str) -> str:
    return unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode().lower()


@dataclass(frozen=True)
class DemoResult:
    logins: tuple[tuple[str, str], ...]
    password: str
    due_mailing_ids: list[int]


def seed_demo(*, session: Session, clock: Clock) -> DemoResult:
    if users.count_users(session=session):
        raise Conflict("the database already has users; demo data goes into an empty one")
    admin = users.create_first_admin(
        session=session, email=DEMO_LOGINS[0][0], password=DEMO_PASSWORD
    )
    people = {
        email: users.add_user(
            session=session, actor=admin, email=email, password=DEMO_PASSWORD, role=role
        )
        for email, role in DEMO_LOGINS[1:]
    }
    now = utcnow()
    due: list[int] = []
    for owner_email, offset in (("ann@demo.example", 0), ("bob@demo.example", 5)):
        owner = people[owner_email]
        ids = [
            clients.add_client(
                session=session,
                actor=owner,
                email=f"{_ascii(name.split()[0])}.{i + offset}@clients.example",
                full_name=name,
                comment="demo client",
            ).id
            for i, name in enumerate(NAMES[offset : offset + 6])
        ]
        welcome = messages.add_message(
            session=session,
            actor=owner,
            subject="Welcome, {{ client.first_name }}!",
            body="Dear {{ client.full_name }},\n\nthank you for subscribing to our news.\n\n"
            "Unsubscribe: {{ unsubscribe_url }}\n",
        )
        digest = messages.add_message(
            session=session,
            actor=owner,
            subject="Weekly digest for {{ client.full_name }}",
            body="Hello {{ client.first_name }},\n\nhere is what happened this week.\n",
        )
        first = mailings.add_mailing(
            session=session,
            actor=owner,
            message_id=welcome.id or 0,
            start=now,
            client_ids=[i for i in ids if i is not None],
            clock=clock,
            now=now,
        )
        due.append(first.id or 0)
        mailings.add_mailing(
            session=session,
            actor=owner,
            message_id=digest.id or 0,
            every="week",
            start=now + timedelta(days=1),
            end=now + timedelta(days=90),
            all_clients=True,
            clock=clock,
            now=now,
        )
    editor = people["editor@demo.example"]
    for i, (title, text) in enumerate(POSTS):
        blog.add_post(
            session=session,
            actor=editor,
            title=title,
            content=text,
            published_at=now - timedelta(days=i),
        )
    return DemoResult(logins=DEMO_LOGINS, password=DEMO_PASSWORD, due_mailing_ids=due)

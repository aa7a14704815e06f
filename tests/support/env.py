"""Every test gets its own data dir, config and database.

The database is a temp SQLite file, or PostgreSQL when MAILCTL_TEST_DATABASE_URL is set
(then the schema is emptied before each test).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from mailctl.config import Settings
from mailctl.models import User

PG_URL = os.environ.get("MAILCTL_TEST_DATABASE_URL", "")
ON_POSTGRES = PG_URL.startswith("postgresql")
PASSWORD = "correct horse battery"  # every test user's


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine

    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    eng.dispose()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    if PG_URL:
        _reset_postgres(PG_URL)
        return PG_URL
    return f"sqlite:///{tmp_path / 'data' / 'mailctl.db'}"


@pytest.fixture(autouse=True)
def mailctl_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> Path:
    """A clean environment: no stray config, data under tmp, fixed zone, no colour."""
    for name in list(os.environ):
        if name.startswith("MAILCTL_") and name != "MAILCTL_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    config = tmp_path / "mailctl.toml"
    config.write_text("")
    data = tmp_path / "data"
    monkeypatch.setenv("MAILCTL_CONFIG", str(config))
    monkeypatch.setenv("MAILCTL_GENERAL_DATA_DIR", str(data))
    monkeypatch.setenv("MAILCTL_DATABASE_URL", db_url)
    monkeypatch.setenv("MAILCTL_SCHEDULER_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    return data


@pytest.fixture
def settings(mailctl_env: Path) -> Settings:
    from mailctl.config import load_settings

    return load_settings()


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    from mailctl import migrations
    from mailctl.db import make_engine

    eng = make_engine(settings, create=True)
    migrations.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    from mailctl.db import session_scope

    with session_scope(engine) as s:
        yield s


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One argon2 hash of PASSWORD for every test user: hashing is deliberately slow."""
    from mailctl.services.passwords import hash_password

    return hash_password(PASSWORD)


@pytest.fixture
def make_user(engine: Engine, password_hash: str) -> Callable[..., User]:
    """Create a committed user with PASSWORD: make_user("manager", email=...)."""
    from mailctl.db import session_scope

    counter = iter(range(1, 10_000))

    def make(
        role: str = "user",
        *,
        email: str | None = None,
        active: bool = True,
        verified: bool = True,
        full_name: str = "",
    ) -> User:
        address = email or f"{role}{next(counter)}@example.com"
        with session_scope(engine) as s:
            user = User(
                email=address,
                full_name=full_name,
                role=role,
                is_active=active,
                is_verified=verified,
                password_hash=password_hash,
            )
            s.add(user)
            s.flush()
            s.refresh(user)
            return user

    return make


class Cli:
    """`mailctl ARGS` in-process (Typer's CliRunner), optionally `--as` someone."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: Any, input: str | None = None, as_: str | None = None) -> Any:
        from mailctl.cli import app

        argv = (["--as", as_] if as_ else []) + [str(a) for a in args]
        return self.runner.invoke(app, argv, input=input, catch_exceptions=False)


@pytest.fixture
def cli(engine: Engine) -> Cli:
    """The CLI on an initialised database whose first admin is admin@example.com."""
    runner = Cli()
    result = runner(
        "init", "--admin", "admin@example.com", "--password-stdin", input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    return runner


@pytest.fixture
def bare_cli() -> Cli:
    """The CLI with no database set up."""
    return Cli()

"""HTML newsletters: the panel fixtures of tests/web and the SMTP sink of tests/sending."""

from tests.web.conftest import app, client, make_user, new_client, password_hash  # noqa: F401

from sending.conftest import make_mailing, owner, sink, smtp_settings  # noqa: F401

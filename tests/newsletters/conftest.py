"""HTML newsletters: the shared plugins (tests/support) and the mailing fixtures of
tests/sending."""

from tests.sending.conftest import make_mailing, owner  # noqa: F401

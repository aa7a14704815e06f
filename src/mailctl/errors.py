"""Domain errors. Adapters turn them into one line on stderr or an HTTP status."""


class MailctlError(Exception):
    """Base of every error mailctl reports to a person instead of a traceback."""

    exit_code = 1
    http_status = 400


class NotFound(MailctlError):
    http_status = 404


class Invalid(MailctlError):
    http_status = 400


class BadPassword(Invalid):
    """A new password the rule refuses (too short, too long, or the two copies differ)."""


class Conflict(MailctlError):
    http_status = 409


class Forbidden(MailctlError):
    http_status = 403


class Unverified(Forbidden):
    """The right password, but the email address is not confirmed yet."""


class Unauthorized(MailctlError):
    http_status = 401


class Throttled(MailctlError):
    """Too many tries in a short time; `retry_after` says in how many seconds to try again."""

    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConfigError(MailctlError):
    pass


class DatabaseError(MailctlError):
    http_status = 503


class NoDatabase(ConfigError):
    """The configured SQLite file does not exist (only `init` and `db upgrade` make one)."""

    http_status = 503

"""Domain errors. Adapters turn them into one line on stderr or an HTTP status."""


class MailctlError(Exception):
    """Base of every error mailctl reports to a person instead of a traceback."""

    exit_code = 1
    http_status = 400


class NotFound(MailctlError):
    http_status = 404


class Invalid(MailctlError):
    http_status = 400


class Conflict(MailctlError):
    http_status = 409


class Forbidden(MailctlError):
    http_status = 403


class Unauthorized(MailctlError):
    http_status = 401


class ConfigError(MailctlError):
    pass


class DatabaseError(MailctlError):
    http_status = 503


class NoDatabase(ConfigError):
    """The configured SQLite file does not exist (only `init` and `db upgrade` make one)."""

    http_status = 503

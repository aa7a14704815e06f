"""Every setting, once: its type, default, help text and environment name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailctl.errors import ConfigError


@dataclass(frozen=True)
class Key:
    type: type
    default: Any
    help: str
    secret: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None  # a budget of zero would refuse everything


# Every setting, once: the loader, the typed sections (config/sections.py), `config show` and
# mailctl.toml.example all read this table. A default of None means "derived at load time"
# (see loader._derived_defaults). A key added here gets a field of the same name and type in
# its section's dataclass; importing mailctl.config checks that they agree.
SCHEMA: dict[str, dict[str, Key]] = {
    "general": {
        "data_dir": Key(str, None, "where the database, outbox, cache and uploads live"),
        "log_level": Key(
            str, "INFO", "daemon and web log level", choices=("DEBUG", "INFO", "WARNING", "ERROR")
        ),
    },
    "database": {
        "url": Key(
            str,
            None,
            "SQLAlchemy URL; sqlite:///PATH or postgresql+psycopg://USER:PW@HOST/DB",
            secret=True,
        ),
        "busy_timeout_ms": Key(int, 15000, "SQLite: how long a writer waits for the lock"),
        "pool_size": Key(int, 5, "PostgreSQL: connections kept open per process"),
        "max_overflow": Key(int, 5, "PostgreSQL: extra connections allowed under load"),
        "pool_timeout": Key(int, 30, "PostgreSQL: seconds to wait for a free connection"),
        "pool_recycle": Key(int, 1800, "PostgreSQL: seconds after which a connection is replaced"),
    },
    "delivery": {
        "transport": Key(
            str,
            "outbox",
            "outbox writes .eml files; smtp talks to [smtp]",
            choices=("outbox", "smtp"),
        ),
        "outbox_dir": Key(str, None, "folder for the outbox transport"),
        "from_address": Key(str, "mailctl@localhost", "envelope and From: address"),
        "from_name": Key(str, "mailctl", "display name in From:"),
        "postal_address": Key(
            str, "", "postal address line in the footer of HTML newsletters' layouts"
        ),
        "test_sends_per_hour": Key(
            int, 20, "test sends of a message one user may make in an hour", minimum=0
        ),
        "batch_size": Key(int, 200, "recipients claimed at a time by one sender"),
        "lease_seconds": Key(
            int, 300, "a claim not renewed for this long is taken over by another sender"
        ),
        "retry_first_seconds": Key(int, 300, "first retry of a temporary failure after this long"),
        "retry_max_seconds": Key(int, 4000, "back-off doubles up to this"),
        "retry_lifetime_seconds": Key(
            int, 432000, "give up on a recipient after this long (5 days)"
        ),
        "attempt_deadline_seconds": Key(
            float, 60.0, "overall deadline for one message, whatever the server does"
        ),
        "circuit_breaker": Key(
            int,
            5,
            "consecutive failed attempts that stop a pass: connection failures, timeouts and"
            " no reply after the message; after such a stop the next pass tries one first",
            minimum=1,
        ),
    },
    "render": {
        "time_budget_seconds": Key(
            float,
            1.0,
            "CPU time one message may take to render (subject and body): longer is"
            " refused when saving, and fails that recipient when sending",
            minimum=0.01,
        ),
        "max_output_bytes": Key(
            int,
            1_000_000,
            "largest rendered subject or body; each value built on the way too, and all of"
            " them together at most 8 times this",
            minimum=1000,
        ),
        "max_message_bytes": Key(
            int,
            10_000_000,
            "largest whole message with its headers, checked before any byte is sent"
            " (10 MB: the usual relay limit)",
            minimum=1000,
        ),
    },
    "smtp": {
        "host": Key(str, "localhost", "mail server"),
        "port": Key(int, 25, "25, 587 (starttls) or 465 (ssl)"),
        "security": Key(str, "none", "none, starttls or ssl", choices=("none", "starttls", "ssl")),
        "username": Key(str, "", "login, empty for none"),
        "password": Key(
            str, "", "password (prefer password_file or MAILCTL_SMTP_PASSWORD)", secret=True
        ),
        "password_file": Key(str, "", "file holding the password"),
        "ca_file": Key(
            str,
            "",
            "PEM file of CA certificates to trust besides the system's (a private CA or a "
            "self-signed server certificate)",
        ),
        "timeout": Key(float, 30.0, "seconds for every socket operation"),
        "local_hostname": Key(str, "localhost", "name sent in EHLO; avoids a DNS look-up"),
        # The keys below describe one server of several; ARCHITECTURE.md, "Delivery at scale".
        "name": Key(
            str,
            "",
            "what logs and `mailctl smtp` call this server (default: smtp for the lone"
            " [smtp], HOST:PORT for a listed one); never inherited",
        ),
        "connections": Key(
            int, 4, "connections one sender keeps busy at once on this server", minimum=1
        ),
        "rate_per_second": Key(
            float, 0.0, "messages per second for every sender together; 0 for no limit", minimum=0
        ),
        "rate_per_minute": Key(int, 0, "messages per minute, all senders; 0 for none", minimum=0),
        "rate_per_hour": Key(int, 0, "messages per hour, all senders; 0 for none", minimum=0),
        "rate_per_day": Key(
            int, 0, "messages per UTC day, all senders (a relay's quota); 0 for none", minimum=0
        ),
        "priority": Key(
            int, 0, "servers of the lowest priority send; higher ones only when those are down"
        ),
        "weight": Key(int, 1, "share of the load among servers of the same priority", minimum=1),
    },
    "scheduler": {
        "tick_seconds": Key(int, 30, "the daemon looks for due work at least this often"),
        "timezone": Key(str, None, "IANA zone for input, display and wall-clock schedules"),
        "cron": Key(
            str, "* * * * *", "schedule of the crontab line installed by `mailctl crontab add`"
        ),
    },
    "web": {
        "host": Key(str, "127.0.0.1", "address the panel listens on"),
        "port": Key(int, 8000, "port the panel listens on"),
        "base_url": Key(
            str, "", "public URL of the panel, used in emails (default http://HOST:PORT)"
        ),
        "secret_key": Key(
            str, "", "signs sessions and links (default: generated into the data dir)", secret=True
        ),
        "secret_key_file": Key(str, "", "file holding the secret key"),
        "secure_cookies": Key(bool, False, "mark the session cookie Secure (behind HTTPS)"),
        "session_max_age": Key(int, 1209600, "session lifetime in seconds (14 days)"),
        "max_upload_bytes": Key(int, 2_000_000, "largest accepted blog image"),
        "token_max_age": Key(int, 86400, "lifetime of verification and reset links in seconds"),
    },
    "bounces": {
        "domain": Key(
            str,
            "",
            "domain of the return path (VERP): each message's envelope sender becomes"
            " LOCAL+TOKEN@DOMAIN; empty keeps delivery.from_address",
        ),
        "local_part": Key(
            str, "", "local part of the return path (default: that of delivery.from_address)"
        ),
        "soft_limit": Key(
            int,
            3,
            "soft bounces of one address within soft_window_days that suppress it",
            minimum=1,
        ),
        "soft_window_days": Key(int, 15, "the window soft bounces are counted in", minimum=1),
        "host": Key(str, "", "bounce mailbox server (IMAP or POP3); empty: no mailbox to fetch"),
        "port": Key(int, 0, "0 for the protocol's port: 993/143 (IMAP), 995/110 (POP3)", minimum=0),
        "protocol": Key(str, "imap", "imap or pop3", choices=("imap", "pop3")),
        "security": Key(
            str,
            "ssl",
            "ssl (IMAPS, POP3S) or starttls (STARTTLS, STLS); never in the clear",
            choices=("ssl", "starttls"),
        ),
        "username": Key(str, "", "mailbox login"),
        "password": Key(
            str, "", "mailbox password (prefer password_file or the environment)", secret=True
        ),
        "password_file": Key(str, "", "file holding the mailbox password"),
        "folder": Key(str, "INBOX", "IMAP folder read for bounces (POP3 has only one)"),
        "after": Key(
            str,
            "move",
            "what happens to a processed message: move (IMAP: to move_to) or delete",
            choices=("move", "delete"),
        ),
        "move_to": Key(str, "mailctl-processed", "IMAP folder processed messages go to"),
        "ca_file": Key(str, "", "PEM file of CA certificates to trust besides the system's"),
        "timeout": Key(float, 30.0, "seconds for every mailbox socket operation"),
        "max_messages": Key(
            int, 500, "messages read by one fetch at most (the rest wait for the next)", minimum=1
        ),
        "fetch_every_seconds": Key(
            int, 300, "how often the daemon fetches the bounce mailbox", minimum=10
        ),
    },
    "hooks": {
        "max_age_seconds": Key(
            int, 300, "relay webhooks older than this (their signed time) are refused", minimum=1
        ),
        "sns_topic_arns": Key(
            str, "", "Amazon SNS topics accepted (comma separated); empty accepts any"
        ),
        "sns_certificate_file": Key(
            str,
            "",
            "PEM certificate trusted to sign SNS messages instead of fetching the one at"
            " SigningCertURL (a private test setup)",
        ),
        "postmark_username": Key(str, "", "basic-auth user of the Postmark webhook"),
        "postmark_password": Key(
            str, "", "basic-auth password of the Postmark webhook; empty: off", secret=True
        ),
        "sendgrid_public_key": Key(
            str, "", "SendGrid's verification key (base64 or PEM); empty: off"
        ),
        "mailgun_signing_key": Key(
            str, "", "Mailgun's HTTP webhook signing key; empty: off", secret=True
        ),
        "generic_secret": Key(
            str, "", "HMAC-SHA256 key of the generic JSON webhook; empty: off", secret=True
        ),
    },
    "api": {
        "rate_limit": Key(
            int, 600, "requests one API key may make per rate_window_seconds (then 429)", minimum=1
        ),
        "rate_window_seconds": Key(int, 60, "the window of api.rate_limit", minimum=1),
        "webhook_timeout_seconds": Key(
            float, 10.0, "overall deadline of one webhook delivery (connect, send, answer)"
        ),
        "webhook_max_attempts": Key(
            int, 8, "tries of one webhook delivery before it is given up", minimum=1
        ),
        "webhook_retry_first_seconds": Key(
            int, 30, "first retry of a failed webhook delivery; doubles each time", minimum=0
        ),
        "webhook_disable_after": Key(
            int, 20, "consecutive failed tries after which a webhook is disabled", minimum=1
        ),
        "webhook_private_addresses": Key(
            bool,
            False,
            "let webhooks post to loopback, private and link-local addresses (this host, the LAN)",
        ),
    },
    "cache": {
        "dir": Key(str, None, "diskcache folder"),
        "ttl_seconds": Key(int, 60, "lifetime of cached home page figures and blog pages"),
    },
}

# A section whose keys describe one item of a list: `[[smtp.servers]]` tables take the keys of
# [smtp]. A lone [smtp] is the one-server shorthand; beside a list, its values (default <
# file < environment) fill in whatever a listed server leaves out.
LISTS: dict[str, str] = {"smtp": "servers"}


def env_name(section: str, key: str) -> str:
    return f"MAILCTL_{section.upper()}_{key.upper()}"


def coerce(where: str, spec: Key, value: Any) -> Any:
    """A value from TOML or the environment as the key's type; ConfigError naming `where`."""
    try:
        if spec.type is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if spec.type is int and isinstance(value, bool):
            raise ValueError(value)
        result = spec.type(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be {spec.type.__name__}, got {value!r}") from None
    if spec.choices and result not in spec.choices:
        raise ConfigError(f"{where} must be one of {', '.join(spec.choices)}, got {result!r}")
    if spec.minimum is not None and result < spec.minimum:
        raise ConfigError(f"{where} must be at least {spec.minimum:g}, got {result!r}")
    return result

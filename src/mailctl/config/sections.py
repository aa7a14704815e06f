"""The settings as typed, frozen values: one dataclass per section of SCHEMA.

The fields carry names and types only; defaults, documentation and environment names stay in
SCHEMA, and `check_sections()` (run on import) refuses a field and a key that disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from mailctl.config.schema import SCHEMA
from mailctl.errors import ConfigError


def read_secret(value: str, path: str, where: str) -> str:
    """A secret given as itself, else read from its `*_file` companion."""
    if value or not path:
        return value
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {where}_file {path}: {exc.strerror}") from None


@dataclass(frozen=True)
class GeneralSettings:
    data_dir: str
    log_level: str


@dataclass(frozen=True)
class DatabaseSettings:
    url: str
    busy_timeout_ms: int
    pool_size: int
    max_overflow: int
    pool_timeout: int
    pool_recycle: int


@dataclass(frozen=True)
class DeliverySettings:
    transport: str
    outbox_dir: str
    from_address: str
    from_name: str
    postal_address: str
    test_sends_per_hour: int
    batch_size: int
    lease_seconds: int
    retry_first_seconds: int
    retry_max_seconds: int
    retry_lifetime_seconds: int
    attempt_deadline_seconds: float
    circuit_breaker: int


@dataclass(frozen=True)
class RenderSettings:
    time_budget_seconds: float
    max_output_bytes: int
    max_message_bytes: int


@dataclass(frozen=True)
class SmtpServer:
    """One mail server: the [smtp] section, or one of its [[smtp.servers]] tables."""

    host: str
    port: int
    security: str
    username: str
    password: str
    password_file: str
    ca_file: str
    timeout: float
    local_hostname: str
    name: str
    connections: int
    rate_per_second: float
    rate_per_minute: int
    rate_per_hour: int
    rate_per_day: int
    priority: int
    weight: int
    # Which table it came from, for messages: "smtp" or "smtp.servers[1]".
    where: str = "smtp"

    def login_password(self) -> str:
        return read_secret(self.password, self.password_file, f"{self.where}.password")

    @property
    def limited(self) -> bool:
        """Whether any shared rate limit applies (each send then asks the database)."""
        return bool(
            self.rate_per_second or self.rate_per_minute or self.rate_per_hour or self.rate_per_day
        )


@dataclass(frozen=True)
class SmtpSettings:
    # Never empty: a lone [smtp] section is servers[0].
    servers: tuple[SmtpServer, ...]

    @property
    def lanes(self) -> int:
        """Connections one sender keeps busy at once: enough to fill the priority tier with
        the most (failover to another tier keeps every lane useful)."""
        tiers: dict[int, int] = {}
        for server in self.servers:
            tiers[server.priority] = tiers.get(server.priority, 0) + server.connections
        return max(tiers.values())


@dataclass(frozen=True)
class SchedulerSettings:
    tick_seconds: int
    timezone: str
    cron: str


@dataclass(frozen=True)
class WebSettings:
    host: str
    port: int
    base_url: str
    secret_key: str
    secret_key_file: str
    secure_cookies: bool
    session_max_age: int
    max_upload_bytes: int
    token_max_age: int

    def public_url(self) -> str:
        """Where links in emails point: base_url, else the address the panel listens on."""
        return self.base_url.rstrip("/") or f"http://{self.host}:{self.port}"

    def configured_secret_key(self) -> str:
        """The key set by hand (secret_key or its file); empty when mailctl makes its own."""
        return read_secret(self.secret_key, self.secret_key_file, "web.secret_key")


@dataclass(frozen=True)
class BouncesSettings:
    domain: str
    local_part: str
    soft_limit: int
    soft_window_days: int
    host: str
    port: int
    protocol: str
    security: str
    username: str
    password: str
    password_file: str
    folder: str
    after: str
    move_to: str
    ca_file: str
    timeout: float
    max_messages: int
    fetch_every_seconds: int

    def login_password(self) -> str:
        return read_secret(self.password, self.password_file, "bounces.password")

    @property
    def mailbox_port(self) -> int:
        if self.port:
            return self.port
        ports = {"imap": (993, 143), "pop3": (995, 110)}[self.protocol]
        return ports[0] if self.security == "ssl" else ports[1]


@dataclass(frozen=True)
class HooksSettings:
    max_age_seconds: int
    sns_topic_arns: str
    sns_certificate_file: str
    postmark_username: str
    postmark_password: str
    sendgrid_public_key: str
    mailgun_signing_key: str
    generic_secret: str


@dataclass(frozen=True)
class ApiSettings:
    rate_limit: int
    rate_window_seconds: int
    webhook_timeout_seconds: float
    webhook_max_attempts: int
    webhook_retry_first_seconds: int
    webhook_disable_after: int
    webhook_private_addresses: bool


@dataclass(frozen=True)
class CacheSettings:
    dir: str
    ttl_seconds: int


# The dataclass each section's keys build (for [smtp]: each server).
SECTION_TYPES: dict[str, type] = {
    "general": GeneralSettings,
    "database": DatabaseSettings,
    "delivery": DeliverySettings,
    "render": RenderSettings,
    "smtp": SmtpServer,
    "scheduler": SchedulerSettings,
    "web": WebSettings,
    "bounces": BouncesSettings,
    "hooks": HooksSettings,
    "api": ApiSettings,
    "cache": CacheSettings,
}
# Fields a section's dataclass has beyond its keys (set by the loader, not by the user).
_EXTRA = {"smtp": {"where"}}


def check_sections() -> None:
    """Every key of SCHEMA is a field of its section's dataclass, of the same type, and back."""
    if set(SECTION_TYPES) != set(SCHEMA):
        raise TypeError(f"SECTION_TYPES covers {sorted(SECTION_TYPES)}, SCHEMA {sorted(SCHEMA)}")
    for section, cls in SECTION_TYPES.items():
        declared = {f.name: f.type for f in fields(cls) if f.name not in _EXTRA.get(section, ())}
        keys = SCHEMA[section]
        if set(declared) != set(keys):
            missing = sorted(set(keys) ^ set(declared))
            raise TypeError(f"[{section}] and {cls.__name__} disagree on {', '.join(missing)}")
        for key, spec in keys.items():
            # With postponed annotations a field's type is its source text ("int").
            if declared[key] != spec.type.__name__:
                raise TypeError(
                    f"{cls.__name__}.{key} is {declared[key]}, SCHEMA says {spec.type.__name__}"
                )

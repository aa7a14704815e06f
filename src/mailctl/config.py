"""Settings: defaults < mailctl.toml < MAILCTL_* environment < command-line flags."""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from mailctl.errors import ConfigError

APP = "mailctl"


@dataclass(frozen=True)
class Key:
    type: type
    default: Any
    help: str
    secret: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None  # a budget of zero would refuse everything


# Every setting, once: the loader, `config show` and mailctl.toml.example all read this table.
# A default of None means "derived at load time" (see _derived_defaults).
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
    "cache": {
        "dir": Key(str, None, "diskcache folder"),
        "ttl_seconds": Key(int, 60, "lifetime of cached home page figures and blog pages"),
    },
}


def env_name(section: str, key: str) -> str:
    return f"MAILCTL_{section.upper()}_{key.upper()}"


def _system_timezone() -> str:
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and "/" in tz or tz == "UTC":
        return tz
    try:
        name = Path("/etc/timezone").read_text().strip()
        if name:
            return name
    except OSError:
        pass
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    return "UTC"


def _coerce(section: str, key: str, spec: Key, value: Any) -> Any:
    where = f"{section}.{key}"
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


@dataclass
class Settings:
    values: dict[str, dict[str, Any]]
    sources: dict[str, dict[str, str]]
    config_path: Path | None = None
    # Not a user option: integration tests shrink periodic runs to seconds with it.
    test_period_seconds: int | None = field(default=None)

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key]

    @property
    def data_dir(self) -> Path:
        return Path(self.values["general"]["data_dir"])

    @property
    def database_url(self) -> str:
        return str(self.values["database"]["url"])

    @property
    def timezone(self) -> str:
        return str(self.values["scheduler"]["timezone"])

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    def secret(self, section: str, key: str) -> str:
        """A secret from the setting itself, else from its `<key>_file` companion."""
        value = str(self.values[section][key])
        path = str(self.values[section].get(f"{key}_file", ""))
        if not value and path:
            try:
                value = Path(path).read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read {section}.{key}_file {path}: {exc.strerror}"
                ) from None
        return value

    def web_secret_key(self) -> str:
        key = self.secret("web", "secret_key")
        if key:
            return key
        # No key configured: keep one in the data dir so sessions survive restarts. Written
        # to a temp file and linked into place, so a second process starting at the same
        # moment reads either no file or the whole key, never an empty one.
        path = self.data_dir / "secret_key"
        for _ in range(2):
            try:
                key = path.read_text().strip()
            except FileNotFoundError:
                key = ""
            if key:
                return key
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process won: read its key
            finally:
                tmp.unlink()
        raise ConfigError(f"the secret key file {path} is empty; delete it or set web.secret_key")

    def base_url(self) -> str:
        url = str(self.values["web"]["base_url"]).rstrip("/")
        if url:
            return url
        return f"http://{self.values['web']['host']}:{self.values['web']['port']}"

    def base_url_problem(self) -> str | None:
        """Why links in mail would not reach the panel: real mail, and no web.base_url."""
        if self.values["delivery"]["transport"] != "smtp" or self.values["web"]["base_url"]:
            return None
        return (
            f"web.base_url is not set: unsubscribe and account links in mail point at "
            f"{self.base_url()}, which readers cannot open; set it to the panel's public URL"
        )

    def with_overrides(self, section: str, **values: Any) -> Settings:
        new_values = {s: dict(v) for s, v in self.values.items()}
        new_sources = {s: dict(v) for s, v in self.sources.items()}
        for key, value in values.items():
            new_values[section][key] = _coerce(section, key, SCHEMA[section][key], value)
            new_sources[section][key] = "flag"
        return Settings(new_values, new_sources, self.config_path, self.test_period_seconds)


def find_config(
    explicit: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None
) -> Path | None:
    env = dict(os.environ) if env is None else env
    if explicit:
        return Path(explicit)
    if env.get("MAILCTL_CONFIG"):
        return Path(env["MAILCTL_CONFIG"])
    candidates = [
        Path("mailctl.toml"),
        Path(platformdirs.user_config_dir(APP)) / "mailctl.toml",
        Path("/etc/mailctl/mailctl.toml"),
    ]
    return next((p for p in candidates if p.is_file()), None)


def load_settings(
    path: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None
) -> Settings:
    env = dict(os.environ if env is None else env)
    config_path = find_config(path, env)
    file_data: dict[str, Any] = {}
    if config_path is not None:
        try:
            file_data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {config_path}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {config_path}: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {config_path} is not valid TOML: {exc}") from None
    for section, table in file_data.items():
        if section not in SCHEMA or not isinstance(table, dict):
            raise ConfigError(f"{config_path}: unknown section [{section}]")
        for key in table:
            if key not in SCHEMA[section]:
                raise ConfigError(f"{config_path}: unknown key {key!r} in [{section}]")

    values: dict[str, dict[str, Any]] = {}
    sources: dict[str, dict[str, str]] = {}
    for section, keys in SCHEMA.items():
        values[section], sources[section] = {}, {}
        for key, spec in keys.items():
            name = env_name(section, key)
            if name in env:
                raw, source = env[name], f"env {name}"
            elif key in file_data.get(section, {}):
                raw, source = file_data[section][key], f"file {config_path}"
            else:
                raw, source = spec.default, "default"
            values[section][key] = None if raw is None else _coerce(section, key, spec, raw)
            sources[section][key] = source
    _derived_defaults(values)
    test_period = env.get("MAILCTL_TEST_PERIOD_SECONDS")
    return Settings(values, sources, config_path, int(test_period) if test_period else None)


def _derived_defaults(values: dict[str, dict[str, Any]]) -> None:
    general = values["general"]
    if general["data_dir"] is None:
        general["data_dir"] = platformdirs.user_data_dir(APP)
    data_dir = Path(general["data_dir"]).expanduser()
    general["data_dir"] = str(data_dir)
    if values["database"]["url"] is None:
        values["database"]["url"] = f"sqlite:///{data_dir / 'mailctl.db'}"
    if values["delivery"]["outbox_dir"] is None:
        values["delivery"]["outbox_dir"] = str(data_dir / "outbox")
    if values["cache"]["dir"] is None:
        values["cache"]["dir"] = str(data_dir / "cache")
    if values["scheduler"]["timezone"] is None:
        values["scheduler"]["timezone"] = _system_timezone()
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(values["scheduler"]["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"scheduler.timezone: unknown time zone {values['scheduler']['timezone']!r}"
        ) from None


def mask(section: str, key: str, value: Any) -> Any:
    spec = SCHEMA[section][key]
    if not spec.secret or not value:
        return value
    if section == "database":
        # Show the URL but hide its password.
        from sqlalchemy.engine import make_url

        try:
            return make_url(str(value)).render_as_string(hide_password=True)
        except Exception:
            return "****"
    return "****"


def example_toml() -> str:
    """mailctl.toml.example, written from SCHEMA so it always documents every key."""
    derived = {
        ("general", "data_dir"): "the user data dir, e.g. ~/.local/share/mailctl",
        ("database", "url"): "sqlite:///<data_dir>/mailctl.db",
        ("delivery", "outbox_dir"): "<data_dir>/outbox",
        ("scheduler", "timezone"): "the system's zone",
        ("cache", "dir"): "<data_dir>/cache",
    }
    lines = [
        "# mailctl configuration. Every key is optional; the value shown is the default.",
        "# Found by --config PATH, else $MAILCTL_CONFIG, else ./mailctl.toml, else the user",
        "# config dir (~/.config/mailctl/mailctl.toml), else /etc/mailctl/mailctl.toml.",
        "# Every key can be overridden by the environment variable named beside it.",
    ]
    for section, keys in SCHEMA.items():
        lines += ["", f"[{section}]"]
        for key, spec in keys.items():
            choices = f" ({', '.join(spec.choices)})" if spec.choices else ""
            lines.append(f"# {spec.help}{choices}; env {env_name(section, key)}")
            if (section, key) in derived:
                lines.append(f"# default: {derived[section, key]}")
                lines.append(f"# {key} = ...")
            else:
                value = spec.default
                if isinstance(value, bool):
                    shown = "true" if value else "false"
                elif isinstance(value, str):
                    shown = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
                else:
                    shown = str(value)
                lines.append(f"# {key} = {shown}")
    return "\n".join(lines) + "\n"

"""Settings: defaults < mailctl.toml < MAILCTL_* environment < command-line flags."""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from mailctl.config.schema import LISTS, SCHEMA, coerce, env_name
from mailctl.config.sections import (
    ApiSettings,
    BouncesSettings,
    CacheSettings,
    DatabaseSettings,
    DeliverySettings,
    GeneralSettings,
    HooksSettings,
    RenderSettings,
    SchedulerSettings,
    SmtpServer,
    SmtpSettings,
    WebSettings,
)
from mailctl.errors import ConfigError

APP = "mailctl"


@dataclass(frozen=True)
class Effective:
    """One setting as `config show` prints it."""

    key: str  # "smtp.port", or "smtp.servers[1].host" for a listed server
    value: Any  # secrets masked
    source: str  # "default", "file PATH", "env NAME", "flag"; "[smtp] ..." when inherited
    env: str | None  # the variable that overrides it (listed servers have none)


@dataclass
class _Layers:
    """The merged raw values behind one Settings, kept so that flags can go on top."""

    values: dict[str, dict[str, Any]]
    sources: dict[str, dict[str, str]]
    # Per list section ("smtp"), each table's own keys and where they came from.
    items: dict[str, list[tuple[dict[str, Any], dict[str, str]]]]


@dataclass(frozen=True)
class Settings:
    general: GeneralSettings
    database: DatabaseSettings
    delivery: DeliverySettings
    render: RenderSettings
    smtp: SmtpSettings
    scheduler: SchedulerSettings
    web: WebSettings
    bounces: BouncesSettings
    hooks: HooksSettings
    api: ApiSettings
    cache: CacheSettings
    # Not a user option: integration tests shrink periodic runs to seconds with it
    # (MAILCTL_TEST_PERIOD_SECONDS). No default: whoever builds a Clock passes it on.
    test_period_seconds: int | None
    config_path: Path | None
    _layers: _Layers = field(repr=False, compare=False)

    @property
    def data_dir(self) -> Path:
        return Path(self.general.data_dir)

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    def base_url(self) -> str:
        """Where links in emails point: web.base_url, else the address the panel listens on."""
        return self.web.base_url.rstrip("/") or f"http://{self.web.host}:{self.web.port}"

    def base_url_problem(self) -> str | None:
        """Why links in mail would not reach the panel: real mail, and no web.base_url."""
        if self.delivery.transport != "smtp" or self.web.base_url:
            return None
        return (
            f"web.base_url is not set: unsubscribe and account links in mail point at "
            f"{self.base_url()}, which readers cannot open; set it to the panel's public URL"
        )

    def web_secret_key(self) -> str:
        key = self.web.configured_secret_key()
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

    def with_overrides(self, section: str, **values: Any) -> Settings:
        """These settings with command-line flags on top (`--port 8080` is web.port)."""
        layers = _Layers(
            {s: dict(v) for s, v in self._layers.values.items()},
            {s: dict(v) for s, v in self._layers.sources.items()},
            self._layers.items,
        )
        for key, value in values.items():
            spec = SCHEMA[section][key]
            layers.values[section][key] = coerce(f"{section}.{key}", spec, value)
            layers.sources[section][key] = "flag"
        return _build(layers, self.config_path, self.test_period_seconds)

    def effective(self) -> list[Effective]:
        """Every setting in effect, secrets masked, with where it came from."""
        values, sources = self._layers.values, self._layers.sources
        rows = [
            Effective(
                f"{section}.{key}",
                mask(section, key, values[section][key]),
                sources[section][key],
                env_name(section, key),
            )
            for section, keys in SCHEMA.items()
            for key in keys
        ]
        for section, name in LISTS.items():
            for index, (own, own_sources) in enumerate(self._layers.items.get(section, [])):
                for key in SCHEMA[section]:
                    inherited = key not in own
                    if section == "smtp" and key == "name" and inherited:  # never inherited
                        derived = self.smtp.servers[index].name
                        rows.append(
                            Effective(f"{section}.{name}[{index}].name", derived, "derived", None)
                        )
                        continue
                    rows.append(
                        Effective(
                            f"{section}.{name}[{index}].{key}",
                            mask(section, key, values[section][key] if inherited else own[key]),
                            f"[{section}] {sources[section][key]}"
                            if inherited
                            else own_sources[key],
                            None,
                        )
                    )
        return rows


def _build(layers: _Layers, config_path: Path | None, test_period: int | None) -> Settings:
    values = layers.values
    shorthand = values["smtp"]
    listed = layers.items.get("smtp", [])
    servers = tuple(
        SmtpServer(
            **(shorthand | {"name": ""} | own),
            where=f"smtp.servers[{index}]",
        )
        for index, (own, _) in enumerate(listed)
    ) or (SmtpServer(**shorthand),)
    servers = _named(servers)
    return Settings(
        general=GeneralSettings(**values["general"]),
        database=DatabaseSettings(**values["database"]),
        delivery=DeliverySettings(**values["delivery"]),
        render=RenderSettings(**values["render"]),
        smtp=SmtpSettings(servers=servers),
        scheduler=SchedulerSettings(**values["scheduler"]),
        web=WebSettings(**values["web"]),
        bounces=BouncesSettings(**values["bounces"]),
        hooks=HooksSettings(**values["hooks"]),
        api=ApiSettings(**values["api"]),
        cache=CacheSettings(**values["cache"]),
        test_period_seconds=test_period,
        config_path=config_path,
        _layers=layers,
    )


def _named(servers: tuple[SmtpServer, ...]) -> tuple[SmtpServer, ...]:
    """Every server with a name of its own (a listed one never inherits [smtp]'s), unique."""
    named = tuple(
        replace(
            s,
            name=s.name or ("smtp" if s.where == "smtp" else f"{s.host}:{s.port}"),
        )
        for s in servers
    )
    seen: dict[str, str] = {}
    for server in named:
        if server.name in seen:
            raise ConfigError(
                f"{server.where} and {seen[server.name]} are both called {server.name!r};"
                " give each [[smtp.servers]] its own name"
            )
        seen[server.name] = server.where
    return named


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


def _read_file(config_path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {config_path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {config_path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {config_path} is not valid TOML: {exc}") from None
    for section, table in data.items():
        if section not in SCHEMA or not isinstance(table, dict):
            raise ConfigError(f"{config_path}: unknown section [{section}]")
        for key in table:
            if key not in SCHEMA[section] and key != LISTS.get(section):
                raise ConfigError(f"{config_path}: unknown key {key!r} in [{section}]")
    return data


def _read_items(
    data: dict[str, Any], section: str, config_path: Path
) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """The `[[section.name]]` tables of the file, each key checked and coerced."""
    name = LISTS[section]
    tables = data.get(section, {}).get(name)
    if tables is None:
        return []
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{config_path}: {section}.{name} must be [[{section}.{name}]] tables")
    if not tables:
        raise ConfigError(f"{config_path}: {section}.{name} is empty; list one or leave it out")
    items = []
    for index, table in enumerate(tables):
        where = f"{section}.{name}[{index}]"
        own: dict[str, Any] = {}
        for key, raw in table.items():
            if key not in SCHEMA[section]:
                raise ConfigError(f"{config_path}: unknown key {key!r} in {where}")
            own[key] = coerce(f"{where}.{key}", SCHEMA[section][key], raw)
        items.append((own, dict.fromkeys(own, f"file {config_path}")))
    return items


def load_settings(
    path: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None
) -> Settings:
    env = dict(os.environ if env is None else env)
    config_path = find_config(path, env)
    file_data = _read_file(config_path) if config_path is not None else {}
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
            where = f"{section}.{key}"
            values[section][key] = None if raw is None else coerce(where, spec, raw)
            sources[section][key] = source
    _derived_defaults(values)
    items = {s: _read_items(file_data, s, config_path) for s in LISTS} if config_path else {}
    test_period = env.get("MAILCTL_TEST_PERIOD_SECONDS")
    try:
        period = int(test_period) if test_period else None
    except ValueError:
        raise ConfigError(f"MAILCTL_TEST_PERIOD_SECONDS must be int, got {test_period!r}") from None
    return _build(_Layers(values, sources, items), config_path, period)


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

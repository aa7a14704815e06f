"""Settings, typed: `load_settings(path)` gives frozen sections (`settings.smtp.servers[0]`,
`settings.delivery.batch_size`) built from one SCHEMA of keys, defaults and help texts."""

from mailctl.config.example import example_toml
from mailctl.config.loader import APP, Effective, Settings, find_config, load_settings, mask
from mailctl.config.schema import LISTS, SCHEMA, Key, coerce, env_name
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
    check_sections,
)

check_sections()

__all__ = [
    "APP",
    "LISTS",
    "SCHEMA",
    "ApiSettings",
    "BouncesSettings",
    "CacheSettings",
    "DatabaseSettings",
    "DeliverySettings",
    "Effective",
    "GeneralSettings",
    "HooksSettings",
    "Key",
    "RenderSettings",
    "SchedulerSettings",
    "Settings",
    "SmtpServer",
    "SmtpSettings",
    "WebSettings",
    "coerce",
    "env_name",
    "example_toml",
    "find_config",
    "load_settings",
    "mask",
]

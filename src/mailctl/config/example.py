"""mailctl.toml.example, written from SCHEMA (a test checks the file in the repository)."""

from __future__ import annotations

from mailctl.config.schema import LISTS, SCHEMA, env_name

# Defaults computed at load time, described instead of shown.
DERIVED = {
    ("general", "data_dir"): "the user data dir, e.g. ~/.local/share/mailctl",
    ("database", "url"): "sqlite:///<data_dir>/mailctl.db",
    ("delivery", "outbox_dir"): "<data_dir>/outbox",
    ("scheduler", "timezone"): "the system's zone",
    ("cache", "dir"): "<data_dir>/cache",
}


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def example_toml() -> str:
    """mailctl.toml.example, written from SCHEMA so it always documents every key."""
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
            if (section, key) in DERIVED:
                lines.append(f"# default: {DERIVED[section, key]}")
                lines.append(f"# {key} = ...")
            else:
                lines.append(f"# {key} = {_shown(spec.default)}")
        if section in LISTS:
            name = LISTS[section]
            first = next(iter(keys))
            table = f"[[{section}.{name}]]"
            lines += [
                "#",
                f"# Several: one {table} table each, with the keys above; what a table",
                f"# leaves out comes from [{section}] (default, file or environment). Environment",
                f"# variables set [{section}] only. For now mail goes out through the first one.",
                f"# {table}",
                f"# {first} = {_shown(keys[first].default)}",
            ]
    return "\n".join(lines) + "\n"

"""Settings: the generated secret key is one and the same for processes starting together."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def _key(data_dir: str) -> str:
    from mailctl.config import load_settings

    env = {"MAILCTL_GENERAL_DATA_DIR": data_dir, "MAILCTL_CONFIG": "/dev/null"}
    return load_settings(env=env).web_secret_key()


def test_processes_starting_together_share_one_non_empty_key(tmp_path: Path) -> None:
    for attempt in range(5):
        data_dir = str(tmp_path / f"d{attempt}")
        with ProcessPoolExecutor(4) as pool:
            keys = list(pool.map(_key, [data_dir] * 8))
        assert len(set(keys)) == 1 and len(keys[0]) > 40
        assert not [p for p in Path(data_dir).iterdir() if p.name.startswith(".secret_key")]


def test_the_example_file_documents_every_setting() -> None:
    """mailctl.toml.example is generated from the settings table; regenerate it when they differ
    (python -c "from mailctl.config import example_toml; print(example_toml(), end='')")."""
    from mailctl.config import SCHEMA, env_name, example_toml

    text = (Path(__file__).parent.parent / "mailctl.toml.example").read_text()
    assert text == example_toml()
    for section, keys in SCHEMA.items():
        for key in keys:
            assert env_name(section, key) in text


def test_environment_overrides_a_file_value(tmp_path: Path) -> None:
    from mailctl.config import load_settings

    config = tmp_path / "mailctl.toml"
    config.write_text('[smtp]\nport = 2525\nhost = "mail.example.com"\n')
    settings = load_settings(config, env={"MAILCTL_SMTP_PORT": "587"})
    assert settings.get("smtp", "port") == 587
    assert settings.sources["smtp"]["port"] == "env MAILCTL_SMTP_PORT"
    assert settings.get("smtp", "host") == "mail.example.com"
    assert settings.sources["smtp"]["host"].startswith("file ")

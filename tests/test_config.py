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

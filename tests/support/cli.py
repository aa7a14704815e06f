"""Assertions and constants shared by the CLI tests."""

from __future__ import annotations

import json
from typing import Any

USER1 = "user1@example.com"
USER2 = "user2@example.com"
FUTURE = "2030-06-01 09:00"
LATER = "2030-12-01 09:00"


def ok(result: Any) -> Any:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result


def as_json(result: Any) -> Any:
    return json.loads(ok(result).stdout)


def fails(result: Any, text: str, code: int = 1) -> Any:
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert text in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    return result


def new_id(result: Any) -> int:
    return int(ok(result).stdout.strip())

"""The shared fixtures are plugins in tests/support (see its __init__ for what each offers)."""

from __future__ import annotations

import signal

import pytest

pytest_plugins = [
    "tests.support.env",
    "tests.support.world",
    "tests.support.smtp",
    "tests.support.procs",
    "tests.support.web",
]


def pytest_configure(config: pytest.Config) -> None:
    # A suite started in the background by a script (CI runs its two passes side by side)
    # inherits SIGINT ignored, and every command it spawns would too, so Ctrl-C on a prompt
    # would do nothing. A person's terminal delivers it: give the children that.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

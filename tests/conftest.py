"""The shared fixtures are plugins in tests/support (see its __init__ for what each offers)."""

pytest_plugins = [
    "tests.support.env",
    "tests.support.world",
    "tests.support.smtp",
    "tests.support.procs",
    "tests.support.web",
]

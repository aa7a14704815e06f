"""mailctl: a self-hosted mailing service."""

__version__ = "0.1.0"

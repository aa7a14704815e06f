"""Real SMTP servers on 127.0.0.1 (aiosmtpd) and the settings that point mailctl at them."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from mailctl.config import Settings, load_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Envelope:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    at: float  # time.time() when the message was accepted


@dataclass
class Collector:
    """An aiosmtpd handler keeping every accepted message (after `delay` seconds each).

    With a `gate`, every reply waits until the gate is set: the sender is certainly
    mid-message meanwhile (`arrived` tells when the first message came in)."""

    delay: float = 0.0
    gate: threading.Event | None = None
    arrived: threading.Event = field(default_factory=threading.Event)
    envelopes: list[Envelope] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.arrived.set()
        while self.gate is not None and not self.gate.is_set():
            await asyncio.sleep(0.01)
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.envelopes.append(
                Envelope(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.content),
                    time.time(),
                )
            )
        return "250 2.0.0 OK queued"

    def rcpts(self) -> list[str]:
        with self.lock:
            return [r for e in self.envelopes for r in e.rcpt_tos]

    def counts(self) -> Counter[str]:
        """How many copies each recipient got."""
        return Counter(self.rcpts())

    def total(self) -> int:
        return len(self.rcpts())

    def times(self) -> list[float]:
        with self.lock:
            return [e.at for e in self.envelopes for _ in e.rcpt_tos]


@dataclass
class Sink:
    port: int
    handler: Collector
    controller: Any = None
    host: str = "127.0.0.1"

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def start_sink() -> Iterator[Callable[..., Sink]]:
    """start(port=None, delay=0.0, gate=None): a running sink; all are stopped after the test."""
    from aiosmtpd.controller import Controller

    sinks: list[Sink] = []

    def start(
        port: int | None = None, *, delay: float = 0.0, gate: threading.Event | None = None
    ) -> Sink:
        handler = Collector(delay=delay, gate=gate)
        port = port or free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=30)
        controller.start()
        sink = Sink(port, handler, controller)
        sinks.append(sink)
        return sink

    yield start
    for sink in sinks:
        sink.stop()


@pytest.fixture
def sink(start_sink: Callable[..., Sink]) -> Sink:
    return start_sink()


@pytest.fixture
def smtp_settings(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    """configure(port, **overrides): point mailctl (this process and its children) at an SMTP
    server on 127.0.0.1 with short timeouts; returns the Settings."""

    def configure(port: int, **extra: object) -> Settings:
        env = {
            "DELIVERY_TRANSPORT": "smtp",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": port,
            "SMTP_TIMEOUT": 1,
            "DELIVERY_ATTEMPT_DEADLINE_SECONDS": 3,
            "DELIVERY_RETRY_FIRST_SECONDS": 0,
            "DELIVERY_FROM_ADDRESS": "news@example.org",
            "DELIVERY_FROM_NAME": "Example News",
            "WEB_BASE_URL": "https://mail.example.org",
        }
        env.update({k.upper(): v for k, v in extra.items()})
        for key, value in env.items():
            monkeypatch.setenv(f"MAILCTL_{key}", str(value))
        return load_settings()

    return configure


def smtp_env(port: int, **extra: object) -> dict[str, str]:
    """The MAILCTL_* environment of a daemon or run-due subprocess sending to `port`."""
    env: dict[str, object] = {
        "DELIVERY_TRANSPORT": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": port,
        "SMTP_TIMEOUT": 10,
        "DELIVERY_ATTEMPT_DEADLINE_SECONDS": 20,
        "DELIVERY_RETRY_FIRST_SECONDS": 1,
        "DELIVERY_RETRY_MAX_SECONDS": 2,
        "SCHEDULER_TICK_SECONDS": 1,
        "GENERAL_LOG_LEVEL": "INFO",
    }
    env.update({k.upper(): v for k, v in extra.items()})
    return {f"MAILCTL_{k}": str(v) for k, v in env.items()}

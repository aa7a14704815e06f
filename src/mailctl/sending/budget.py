"""The budget of one render: a deadline, caps on what it builds, and the meter that counts.

The sandbox (sandbox.py) calls the meter from the code it generates and from every step it
intercepts; the meter raises BudgetExceeded, a SecurityError: Jinja never swallows it, and
the meter stays tripped, so anything that did catch it would trip again at the next tick.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

from jinja2.sandbox import SecurityError
from jinja2.utils import Namespace

from mailctl.config import SCHEMA, Settings

# Ints beyond this many bits (about 30,000 digits) have no place in a message, and Python
# refuses to print more than 4,300 digits anyway; multiplying them is where the time goes.
INT_BITS = 100_000
# What the values built on the way may add up to, as a multiple of the per-part cap.
WORK_FACTOR = 8
_CHECK_EVERY = 32  # ticks between two looks at the clock


def now() -> float:
    """The budget's clock: CPU seconds of the rendering thread. A render does no I/O, so this
    is the work it costs; on a busy machine, time spent waiting for a core is not charged
    to the template (wall-clock time would refuse sound templates under load)."""
    return time.thread_time()


_DEFAULT = SCHEMA["render"]  # the defaults live there, once


@dataclass(frozen=True)
class RenderLimits:
    """The budgets of one render; `from_settings` reads them from [render]."""

    seconds: float = _DEFAULT["time_budget_seconds"].default
    output_bytes: int = _DEFAULT["max_output_bytes"].default
    message_bytes: int = _DEFAULT["max_message_bytes"].default

    @classmethod
    def from_settings(cls, settings: Settings) -> RenderLimits:
        render = settings.render
        return cls(
            seconds=render.time_budget_seconds,
            output_bytes=render.max_output_bytes,
            message_bytes=render.max_message_bytes,
        )

    @property
    def work_bytes(self) -> int:
        return WORK_FACTOR * self.output_bytes


DEFAULT_LIMITS = RenderLimits()


class BudgetExceeded(SecurityError):
    pass


class Meter:
    """One render's budget: a deadline, the output so far and the work done on the way."""

    __slots__ = ("deadline", "limits", "output", "ticks", "tripped", "work")

    def __init__(self, limits: RenderLimits, deadline: float | None = None) -> None:
        self.limits = limits
        self.deadline = now() + limits.seconds if deadline is None else deadline
        self.output = 0
        self.work = 0
        self.ticks = 0
        self.tripped: str | None = None

    def fail(self, reason: str) -> None:
        self.tripped = self.tripped or reason
        raise BudgetExceeded(self.tripped)

    def tick(self) -> None:
        self.ticks += 1
        if self.ticks % _CHECK_EVERY == 0 or self.tripped:
            self.check_time()

    def check_time(self) -> None:
        if self.tripped:
            raise BudgetExceeded(self.tripped)
        if now() > self.deadline:
            self.fail(
                f"the template takes longer than {self.limits.seconds:g}s to render"
                " (render.time_budget_seconds)"
            )

    def allow(self, size: int) -> None:
        """A value of about `size` bytes is about to be built: refuse it if too big."""
        cap = self.limits.output_bytes
        if size > cap:
            self.fail(
                f"the template builds a value of more than {cap:,} bytes (render.max_output_bytes)"
            )
        if size > 65536:
            self.check_time()

    def build(self, size: int) -> None:
        """A value of `size` bytes was built (or is about to be): it counts as work."""
        self.allow(size)
        self.work += size
        if self.work > self.limits.work_bytes:
            self.fail(
                f"the template builds more than {self.limits.work_bytes:,} bytes on the way"
                f" ({WORK_FACTOR} x render.max_output_bytes)"
            )

    def emit(self, size: int) -> None:
        """`size` characters written to the output (or to a macro's buffer)."""
        self.build(size)

    def result(self, value: Any) -> Any:
        """What a filter, call or operator returned: sized, numbers capped, iterators metered
        as they are read. The clock is read after every such step, not every _CHECK_EVERY
        ticks: one step over a long string (`s | max`, `s | striptags`) takes a third of a
        second in C, and a loop of a few ticks per step would run ten of them past the
        deadline."""
        if type(value) is str:
            self.build(len(value))
        elif isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
            self.build(weight(value, self.limits.output_bytes))
        elif isinstance(value, int):
            # `('f' * 900000) | int(base=16)` or int.from_bytes make numbers of millions of
            # bits in linear time; a division of two of them then takes minutes in one step.
            self.number(value.bit_length())
        elif isinstance(value, Iterator):
            value = MeteredIter(value, self)
        self.check_time()
        return value

    def number(self, bits: int) -> None:
        """A number of about `bits` bits is about to be built (or was): refuse it if too big."""
        if bits > INT_BITS:
            self.fail(f"the template computes a number of more than {INT_BITS:,} bits")

    def text(self, value: Any) -> str:
        """str(value), sized before the conversion (a list of a million references to one
        long string is small, its text is not). Strings (Markup too) stay as they are."""
        if isinstance(value, str):
            self.build(len(value))
            return value
        self.allow(weight(value, self.limits.output_bytes))
        text = str(value)
        self.build(len(text))
        return text


_current: ContextVar[Meter | None] = ContextVar("mailctl_render_meter", default=None)


def meter() -> Meter:
    found = _current.get()
    if found is None:
        # Fail closed: generated code only runs under `metered()`.
        raise SecurityError("a template was rendered without a budget")
    return found


def active_meter() -> Meter | None:
    return _current.get()


@contextmanager
def metered(limits: RenderLimits, deadline: float | None = None) -> Iterator[Meter]:
    current = Meter(limits, deadline)
    token = _current.set(current)
    try:
        yield current
    finally:
        _current.reset(token)


# -- sizes -------------------------------------------------------------------------------------

_FLAT = (str, bytes, bytearray)
_CONTAINERS = (list, tuple, dict, set, frozenset, Namespace)


def _children(value: Any) -> Iterable[Any]:
    if isinstance(value, Namespace):
        value = object.__getattribute__(value, "_Namespace__attrs")
    if isinstance(value, dict):
        return (*value.keys(), *value.values())
    return cast(Iterable[Any], value)  # one of _CONTAINERS


def _flat_weight(value: Any) -> int:
    if isinstance(value, _FLAT):
        return len(value)
    if isinstance(value, int):
        return value.bit_length() * 3 // 10 + 1
    return 8


def weight(value: Any, limit: int) -> int:
    """About how many characters `value` turns into as text: the length of a string, eight per
    reference in a container plus what each refers to (counted every time it is referred to,
    since that is how often it is printed). Stops counting once past `limit`."""
    kind = type(value)
    if kind is str:  # by far the most common: first
        return len(value)
    if kind is int:
        return cast(int, value).bit_length() * 3 // 10 + 1  # `kind is` does not narrow
    if not isinstance(value, _CONTAINERS):
        return _flat_weight(value)
    done: dict[int, int] = {}
    busy: set[int] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        obj, children_done = stack.pop()
        key = id(obj)
        if children_done:
            busy.discard(key)
            total = 0
            for child in _children(obj):
                total += 8 + (
                    done.get(id(child), 8)
                    if isinstance(child, _CONTAINERS)
                    else _flat_weight(child)
                )
                if total > limit:
                    return total
            done[key] = total
            continue
        if key in done or key in busy:  # counted already, or a cycle
            continue
        busy.add(key)
        stack.append((obj, True))
        stack.extend((c, False) for c in _children(obj) if isinstance(c, _CONTAINERS))
    return done[id(value)]


class MeteredIter:
    """An iterator whose every item ticks the meter."""

    __slots__ = ("_it", "_meter")

    def __init__(self, iterable: Any, current: Meter) -> None:
        self._it = iter(iterable)
        self._meter = current

    def __iter__(self) -> MeteredIter:
        return self

    def __next__(self) -> Any:
        self._meter.tick()
        return next(self._it)


class _MeteredSized(MeteredIter):
    """The same over a sized iterable, so that loop.length need not list it."""

    __slots__ = ("_len",)

    def __init__(self, iterable: Any, current: Meter) -> None:
        super().__init__(iterable, current)
        self._len = len(iterable)

    def __len__(self) -> int:
        return self._len


def metered_iter(iterable: Any, current: Meter) -> MeteredIter:
    try:
        return _MeteredSized(iterable, current)
    except TypeError:  # no len(): a generator, an iterator
        return MeteredIter(iterable, current)

"""The template sandbox with a budget: every render stops within its time and size caps.

Jinja's sandbox guards attribute access and calls, not work: two nested loops over a long
string run for hours, and a repetition of a repetition or a filter with a huge width builds
gigabytes in one step. Here the generated code itself carries the checks (a code generator
of our own), so validation, preview and every send share them:

- each loop iteration, macro or call-block body, call, filter and intercepted operator ticks
  a meter that raises once the render is past its deadline;
- each value about to be built (a repetition, a concatenation, a padded or replaced string,
  a formatted one, a joined list, a list from an iterator...) is sized before it is built, so
  no single step allocates more than the per-part cap;
- everything written out, to the result or to a macro's buffer, adds to a work counter that
  bounds what a render can hold in memory in all.

`BudgetExceeded` is a SecurityError: Jinja never swallows it, and the meter stays tripped, so
anything that did catch it would trip again at the next tick.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial, update_wrapper
from typing import Any

from jinja2 import StrictUndefined, Template, nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter, SecurityError
from jinja2.utils import Namespace, _PassArg, generate_lorem_ipsum
from markupsafe import EscapeFormatter, Markup

# Ints beyond this many bits (about 30,000 digits) have no place in a message, and Python
# refuses to print more than 4,300 digits anyway; multiplying them is where the time goes.
INT_BITS = 100_000
# What the values built on the way may add up to, as a multiple of the per-part cap.
WORK_FACTOR = 8
_CHECK_EVERY = 32  # ticks between two looks at the clock


@dataclass(frozen=True)
class RenderLimits:
    """The budgets of one render; `from_settings` reads them from [render]."""

    seconds: float = 1.0
    output_bytes: int = 1_000_000
    message_bytes: int = 10_000_000

    @classmethod
    def from_settings(cls, settings: Any) -> RenderLimits:
        render = settings.values["render"]
        return cls(
            seconds=float(render["time_budget_seconds"]),
            output_bytes=int(render["max_output_bytes"]),
            message_bytes=int(render["max_message_bytes"]),
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
        self.deadline = time.monotonic() + limits.seconds if deadline is None else deadline
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
        if time.monotonic() > self.deadline:
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
        """What a filter or call returned: sized, and iterators metered as they are read."""
        if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
            self.build(weight(value, self.limits.output_bytes))
            return value
        if isinstance(value, Iterator):
            return _MeteredIter(value, self)
        return value

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
    return value  # type: ignore[no-any-return]


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


class _MeteredIter:
    """An iterator whose every item ticks the meter."""

    __slots__ = ("_it", "_meter")

    def __init__(self, iterable: Any, current: Meter) -> None:
        self._it = iter(iterable)
        self._meter = current

    def __iter__(self) -> _MeteredIter:
        return self

    def __next__(self) -> Any:
        self._meter.tick()
        return next(self._it)


class _MeteredSized(_MeteredIter):
    """The same over a sized iterable, so that loop.length need not list it."""

    __slots__ = ("_len",)

    def __init__(self, iterable: Any, current: Meter) -> None:
        super().__init__(iterable, current)
        self._len = len(iterable)

    def __len__(self) -> int:
        return self._len


def metered_iter(iterable: Any, current: Meter) -> _MeteredIter:
    try:
        return _MeteredSized(iterable, current)
    except TypeError:  # no len(): a generator, an iterator
        return _MeteredIter(iterable, current)


# -- estimates of what a step builds -----------------------------------------------------------

_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.S)
_SPEC = re.compile(r"(?:.?[<>=^])?[+\- ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?.?", re.S)
_HUGE = 1 << 62


def _number(text: str | None, star: int) -> int:
    if text == "*":
        return star
    if not text:
        return 0
    return int(text) if len(text) < 19 else _HUGE


def printf_size(fmt: str, args: Any, limit: int) -> int:
    """An upper bound of `fmt % args`: every conversion may print the widest argument,
    padded to its width and precision."""
    if isinstance(args, Mapping):
        values = list(args.values())
    elif isinstance(args, tuple):
        values = list(args)
    else:
        values = [args]
    widest = max((weight(v, limit) for v in values), default=0)
    star = max((abs(v) for v in values if type(v) is int), default=0)
    total = len(fmt)
    for match in _PRINTF.finditer(fmt):
        if match.group(3) == "%":
            continue
        total += _number(match.group(1), star) + _number(match.group(2), star) + widest
        if total > limit:
            break
    return total


def spec_size(value: Any, spec: str, limit: int) -> int:
    """An upper bound of `format(value, spec)`."""
    match = _SPEC.fullmatch(spec)
    width = _number(match.group(1), 0) if match else 0
    precision = _number(match.group(2), 0) if match else 0
    return width + precision + weight(value, limit)


def _count(text: Any, part: Any) -> int:
    try:
        return int(text.count(part))
    except TypeError:
        return 0


def _replace_size(text: Any, old: Any, new: Any, count: Any = None) -> int:
    if not isinstance(text, _FLAT):
        return 0
    found = _count(text, old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    grow = len(new) - len(old) if isinstance(old, _FLAT) and isinstance(new, _FLAT) else 0
    return len(text) + found * max(grow, 0)


def _width_size(text: Any, width: Any = 0, *_: Any) -> int:
    return max(width if isinstance(width, int) else 0, len(text) if isinstance(text, _FLAT) else 0)


def _tabs_size(text: Any, tabsize: Any = 8) -> int:
    size = tabsize if isinstance(tabsize, int) else 0
    return len(text) + _count(text, "\t" if isinstance(text, str) else b"\t") * max(size, 0)


def _translate_size(text: Any, table: Any = None) -> int:
    longest = 1
    if isinstance(table, Mapping):
        longest = max([1, *(len(v) for v in table.values() if isinstance(v, _FLAT))])
    return len(text) * longest


def _indent_size(text: Any, width: Any = 4, *_: Any, **__: Any) -> int:
    pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    return len(str(text)) + (_count(str(text), "\n") + 1) * max(pad, 0)


def _wordwrap_size(text: Any, width: Any = 79, *args: Any, **kwargs: Any) -> int:
    wrap = kwargs.get("wrapstring", args[1] if len(args) > 1 else None) or "\n"
    text = str(text)
    lines = len(text) // max(width if isinstance(width, int) else 1, 1) + _count(text, "\n") + 1
    # textwrap works line by line in Python: each line also counts as work of 64 bytes.
    return len(text) + lines * (len(str(wrap)) + 64)


def _title_size(text: Any) -> int:
    return 8 * len(str(text))  # one Python step per word: slow for its size


def striptags(value: Any) -> str:
    """Markup.striptags in linear time: markupsafe's copies the text once per tag."""
    text = str(value.__html__() if hasattr(value, "__html__") else value)
    for opening, closing in (("<!--", "-->"), ("<", ">")):
        pieces, pos = [], 0
        while (start := text.find(opening, pos)) != -1:
            end = text.find(closing, start)
            if end == -1:
                break
            pieces.append(text[pos:start])
            pos = end + len(closing)
        pieces.append(text[pos:])
        text = "".join(pieces)
    return html.unescape(" ".join(text.split()))


def _urlize_size(text: Any, *args: Any, **kwargs: Any) -> int:
    text = str(text)
    extra = sum(len(str(v)) for v in (*args, *kwargs.values()) if isinstance(v, str))
    words = _count(text, " ") + _count(text, "\n") + 1
    return 3 * len(text) + words * (2 * extra + 64)


def _json_size(value: Any, indent: Any = None) -> int:
    pad = indent if isinstance(indent, int) else len(indent) if isinstance(indent, str) else 0
    return weight(value, _HUGE) * (2 + max(pad, 0))


def _batch_size(value: Any, linecount: Any = 1, fill_with: Any = None) -> int:
    return 8 * linecount if fill_with is not None and isinstance(linecount, int) else 0


def _list_size(value: Any) -> int:
    return 9 * len(value) if hasattr(value, "__len__") else 0


_STR_METHODS: dict[str, Callable[..., int]] = {
    "center": _width_size,
    "ljust": _width_size,
    "rjust": _width_size,
    "zfill": _width_size,
    "expandtabs": _tabs_size,
    "replace": _replace_size,
    "translate": _translate_size,
}

_FILTERS: dict[str, Callable[..., int]] = {
    "center": _width_size,
    "title": _title_size,
    "indent": _indent_size,
    "replace": _replace_size,
    "wordwrap": _wordwrap_size,
    "urlize": _urlize_size,
    "tojson": _json_size,
    "pprint": lambda value, *a, **k: 4 * weight(value, _HUGE),
    "format": lambda value, *args, **kwargs: printf_size(str(value), kwargs or args, _HUGE),
    "batch": _batch_size,
    "list": _list_size,
}


# -- the sandbox -------------------------------------------------------------------------------


class _MeteredFormatter(SandboxedFormatter):
    """str.format with every field sized before it is formatted."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        current = meter()
        current.tick()
        current.allow(spec_size(value, format_spec, current.limits.output_bytes))
        return current.result(super().format_field(value, format_spec))

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is not None:  # !r, !s, !a: the text of any value
            current = meter()
            current.allow(4 * weight(value, current.limits.output_bytes))
        return super().convert_field(value, conversion)


class _MeteredEscapeFormatter(_MeteredFormatter, EscapeFormatter):
    pass


def _too_big(current: Meter) -> None:
    current.fail(
        f"the template builds a value of more than {current.limits.output_bytes:,} bytes"
        " (render.max_output_bytes)"
    )


def _listed(current: Meter, value: Any) -> list[Any]:
    """The items of an iterable, read one tick at a time."""
    items = list(_MeteredIter(value, current))
    current.build(8 * len(items))
    return items


def _joined_size(items: list[Any], sep: Any, cap: int) -> int:
    return sum(weight(i, cap) for i in items) + weight(sep, cap) * max(len(items) - 1, 0)


def _metered_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    pass_arg = _PassArg.from_obj(func)
    estimate = _FILTERS.get(name)

    def run(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        current = meter()
        current.tick()
        cap = current.limits.output_bytes
        for given in (value, *args, *kwargs.values()):
            if weight(given, cap) > cap:
                _too_big(current)
        if name == "sum":
            return _sum(current, context, value, *args, **kwargs)
        if name == "join":
            # Joined here item by item: str.join would build the whole text in one step.
            sep = args[0] if args else kwargs.pop("d", "")
            attribute = args[1] if len(args) > 1 else kwargs.pop("attribute", None)
            items = _listed(current, value)
            if attribute is not None:
                getter = make_attrgetter(context.environment, attribute)
                items = [getter(item) for item in items]
            current.allow(_joined_size(items, sep, cap))
            value, args = [current.text(item) for item in items], (sep,)
        elif estimate is not None:
            current.allow(estimate(value, *args, **kwargs))
        if pass_arg is _PassArg.context:
            result = func(context, value, *args, **kwargs)
        elif pass_arg is _PassArg.eval_context:
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif pass_arg is _PassArg.environment:
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        return current.result(result)

    # Not update_wrapper: it would copy the original's pass_arg over ours.
    run.__name__, run.__doc__ = getattr(func, "__name__", name), func.__doc__
    # pass_context also keeps Jinja from folding the filter at compile time, with no budget.
    return pass_context(run)


def _sum(
    current: Meter, context: Context, value: Any, attribute: Any = None, start: Any = 0
) -> Any:
    # One addition at a time through the sized `+`: sum() over lists copies quadratically.
    items: Iterable[Any] = _MeteredIter(value, current)
    if attribute is not None:
        getter = make_attrgetter(context.environment, attribute)
        items = (getter(item) for item in items)
    if isinstance(start, str):  # as the builtin says
        raise TypeError("sum() can't sum strings [use ''.join(seq) instead]")
    total = start
    for item in items:
        total = context.environment.call_binop(context, "+", total, item)
    return total


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002
    current = meter()
    current.allow(n * max * 12 if isinstance(n, int) and isinstance(max, int) else 0)
    return current.result(generate_lorem_ipsum(n=n, html=html, min=min, max=max))  # type: ignore[no-any-return]


class _BudgetCodeGenerator(CodeGenerator):
    """Jinja's code generator plus the meter's hooks in the generated code.

    Loop iterables are wrapped (`environment.budget_iter`), so every item read ticks, items a
    loop's `if` skips included; macro, call-block and recursive loop bodies tick on entry;
    output goes through `environment.finalize` and `environment.budget_text`, `~` through
    `environment.budget_concat`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wrapped_iters: set[int] = set()
        self._ticked_bodies: set[int] = set()

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        if id(node) in self._wrapped_iters:
            self.write("environment.budget_iter(")
            result = super().visit(node, *args, **kwargs)
            self.write(")")
            return result
        return super().visit(node, *args, **kwargs)

    def blockvisit(self, body: Iterable[nodes.Node], frame: Frame) -> None:
        if id(body) in self._ticked_bodies:
            self.writeline("environment.budget_tick()")
        super().blockvisit(body, frame)

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        self._wrapped_iters.add(id(node.iter))
        if node.recursive:
            self._ticked_bodies.add(id(node.body))
        super().visit_For(node, frame)

    def visit_Macro(self, node: nodes.Macro, frame: Frame) -> None:
        self._ticked_bodies.add(id(node.body))
        super().visit_Macro(node, frame)

    def visit_CallBlock(self, node: nodes.CallBlock, frame: Frame) -> None:
        self._ticked_bodies.add(id(node.body))
        super().visit_CallBlock(node, frame)

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        return f"environment.budget_text({super()._output_const_repr(group)})"

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.budget_concat({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _BudgetTemplate(Template):
    """A template whose plain `render()` is budgeted too (default limits)."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        active = _current.get()
        if active is not None:
            return render_metered(self, active, dict(*args, **kwargs))
        with metered(DEFAULT_LIMITS) as current:
            return render_metered(self, current, dict(*args, **kwargs))


def render_metered(template: Template, current: Meter, variables: dict[str, Any]) -> str:
    """The template's text, its output counted chunk by chunk against the part cap."""
    cap = current.limits.output_bytes
    out: list[str] = []
    size = 0
    for chunk in template.root_render_func(template.new_context(variables)):
        size += len(chunk)
        if size > cap:
            current.fail(
                f"the template renders to more than {cap:,} bytes (render.max_output_bytes)"
            )
        out.append(chunk)
    current.check_time()
    return "".join(out)


@pass_context
def _finalize(context: Context, value: Any) -> str:
    current = meter()
    current.tick()
    return current.text(value)


class Sandbox(ImmutableSandboxedEnvironment):
    """Immutable (no list.append in a loop to grow without bound), and metered."""

    code_generator_class = _BudgetCodeGenerator
    template_class = _BudgetTemplate
    # Intercepted operators are never folded at compile time either.
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=_finalize,
        )
        # pass_context wrappers: never folded at compile time, where there is no budget.
        self.filters["striptags"] = striptags
        self.filters = {name: _metered_filter(name, f) for name, f in self.filters.items()}
        self.globals["lipsum"] = _lipsum

    # -- hooks the generated code calls ----------------------------------------------------

    def budget_tick(self) -> None:
        meter().tick()

    def budget_iter(self, iterable: Any) -> _MeteredIter:
        return metered_iter(iterable, meter())

    def budget_text(self, text: str) -> str:
        current = meter()
        current.tick()
        current.emit(len(text))
        return text

    def budget_concat(self, join: Callable[[Iterable[Any]], str], values: tuple[Any, ...]) -> str:
        current = meter()
        current.tick()
        cap = current.limits.output_bytes
        current.allow(sum(weight(v, cap) for v in values))
        return current.result(join(values))  # type: ignore[no-any-return]

    # -- the sandbox's own interception points ----------------------------------------------

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        current = meter()
        current.tick()
        cap = current.limits.output_bytes
        sized = (str, bytes, list, tuple)
        if operator == "*":
            if isinstance(left, sized) and isinstance(right, int):
                current.allow(weight(left, cap) * max(right, 0))
            elif isinstance(right, sized) and isinstance(left, int):
                current.allow(weight(right, cap) * max(left, 0))
            elif isinstance(left, int) and isinstance(right, int):
                self._int_bits(left.bit_length() + right.bit_length())
        elif operator == "+":
            if isinstance(left, sized) and isinstance(right, sized):
                current.allow(weight(left, cap) + weight(right, cap))
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0:
                self._int_bits(max(left.bit_length(), 1) * right if abs(left) > 1 else 1)
        elif operator == "%" and isinstance(left, str):
            current.allow(printf_size(left, right, cap))
        return current.result(super().call_binop(context, operator, left, right))

    def _int_bits(self, bits: int) -> None:
        if bits > INT_BITS:
            meter().fail(f"the template computes a number of more than {INT_BITS:,} bits")

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        current = meter()
        current.tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, _FLAT):
            name = getattr(__obj, "__name__", "")
            estimate = _STR_METHODS.get(name)
            if estimate is not None:
                current.allow(estimate(owner, *args, **kwargs))
            elif name == "join" and len(args) == 1 and not kwargs:
                items = _listed(current, args[0])
                current.allow(_joined_size(items, owner, current.limits.output_bytes))
                args = (items,)
            elif name in ("format", "format_map") and isinstance(owner, str):
                __obj = __self.wrap_str_format(__obj) or __obj  # however it was reached
            elif name == "striptags" and isinstance(owner, Markup):
                __obj = partial(striptags, owner)
        return current.result(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # Jinja's own wrapper (sandboxed field access), with formatters that size each field.
        if super().wrap_str_format(value) is None:
            return None
        text: str = value.__self__
        formatter: SandboxedFormatter
        if isinstance(text, Markup):
            formatter = _MeteredEscapeFormatter(self, escape=text.escape)
        else:
            formatter = _MeteredFormatter(self)
        is_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs, args = args[0], ()
            return type(text)(formatter.vformat(text, args, kwargs))

        return update_wrapper(wrapper, value)


__all__ = [
    "DEFAULT_LIMITS",
    "BudgetExceeded",
    "Meter",
    "RenderLimits",
    "Sandbox",
    "metered",
    "render_metered",
    "weight",
]

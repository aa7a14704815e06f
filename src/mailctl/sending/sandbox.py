"""The template sandbox with a budget: every render stops within its time and size caps.

Jinja's sandbox guards attribute access and calls, not work: two nested loops over a long
string run for hours, and a repetition of a repetition or a filter with a huge width builds
gigabytes in one step. Here the generated code itself carries the checks (a code generator
of our own), so validation, preview and every send share them:

- each loop iteration, macro or call-block body, call, filter and intercepted operator ticks
  the meter (budget.py), which raises once the render is past its deadline;
- each value about to be built (a repetition, a concatenation, a padded or replaced string,
  a formatted one, a joined list, a list from an iterator...) is sized before it is built
  (estimates.py), so no single step allocates more than the per-part cap;
- everything written out, to the result or to a macro's buffer, adds to a work counter that
  bounds what a render can hold in memory in all.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable
from functools import partial, update_wrapper
from types import BuiltinMethodType, MethodType
from typing import Any, cast

from jinja2 import StrictUndefined, Template, nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter, SecurityError
from jinja2.utils import _PassArg, generate_lorem_ipsum
from markupsafe import EscapeFormatter, Markup

from mailctl.sending.budget import (
    DEFAULT_LIMITS,
    BudgetExceeded,
    Meter,
    MeteredIter,
    RenderLimits,
    active_meter,
    meter,
    metered,
    metered_iter,
    weight,
)
from mailctl.sending.estimates import (
    FILTERS,
    FLAT,
    STR_METHODS,
    printf_size,
    spec_size,
    striptags,
)

_METHODS = (BuiltinMethodType, MethodType)


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
    items = list(MeteredIter(value, current))
    current.build(8 * len(items))
    return items


def _joined_size(items: list[Any], sep: Any, cap: int) -> int:
    return sum(weight(i, cap) for i in items) + weight(sep, cap) * max(len(items) - 1, 0)


def _metered_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    pass_arg = _PassArg.from_obj(func)
    estimate = FILTERS.get(name)

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
    items: Iterable[Any] = MeteredIter(value, current)
    if attribute is not None:
        getter = make_attrgetter(context.environment, attribute)
        items = (getter(item) for item in items)
    if isinstance(start, str):  # as the builtin says
        raise TypeError("sum() can't sum strings [use ''.join(seq) instead]")
    total = start
    env = cast("Sandbox", context.environment)
    for item in items:
        total = env.call_binop(context, "+", total, item)
    return total


# Codecs written in Python whose work grows with the square of the text (punycode's insertion
# sort; idna runs punycode over a label before it checks the label's length): 3,000 distinct
# CJK characters take 2 s in one step, 30,000 take minutes. Every other text codec is C, linear.
_QUADRATIC_CODECS = frozenset({"punycode", "idna"})


def _check_codec(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    encoding = args[0] if args else kwargs.get("encoding", "utf-8")
    if not isinstance(encoding, str):
        return  # str.encode itself refuses it
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return  # the call says "unknown encoding"
    if name in _QUADRATIC_CODECS:
        raise SecurityError(
            f"the {name} codec (its work grows with the square of the text; use utf-8)"
        )


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002
    current = meter()
    current.allow(n * max * 12 if isinstance(n, int) and isinstance(max, int) else 0)
    text = generate_lorem_ipsum(n=n, html=html, min=min, max=max)
    return cast(str, current.result(text))  # a string comes back as it went in


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
        active = active_meter()
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

    def __init__(self, *, autoescape: bool = False) -> None:
        # autoescape: the HTML part of a message, where a client's name is text, never markup.
        super().__init__(
            undefined=StrictUndefined,
            autoescape=autoescape,
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

    def budget_iter(self, iterable: Any) -> MeteredIter:
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
        return cast(str, current.result(join(values)))  # a string comes back as it went in

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
        meter().number(bits)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        current = meter()
        current.tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, FLAT):
            name = getattr(__obj, "__name__", "")
            estimate = STR_METHODS.get(name)
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
            elif name in ("encode", "decode"):
                _check_codec(args, kwargs)
        elif isinstance(owner, int) and getattr(__obj, "__name__", "") == "to_bytes":
            # (1).to_bytes(10 ** 9) allocates its length in one step: sized first.
            length = args[0] if args else kwargs.get("length", 1)
            current.allow(length if isinstance(length, int) else 0)
        return current.result(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # Jinja's own wrapper (sandboxed field access), with formatters that size each field.
        # Called for every attribute a template reads: the common case leaves at once.
        if type(value) not in _METHODS or value.__name__ not in ("format", "format_map"):
            return None
        text = value.__self__
        if not isinstance(text, str):
            return None
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

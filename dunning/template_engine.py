"""The template engine for debtor templates: Django's language, bounded in size and time.

A template is written by staff but rendered for thousands of debtors by the sender, so
what one template can cost is bounded three ways (settings, read at each render):

1. Filters that pad or repeat (ljust, rjust, center, stringformat and floatformat widths,
   wordwrap, truncate*) refuse a width over TEMPLATE_MAX_FILTER_WIDTH before doing any
   work; every filter refuses a result longer than TEMPLATE_MAX_OUTPUT_CHARS (so `add`
   cannot double a string thirty times). Tags that only make text (lorem), leak (debug)
   or reach outside (load, url, include, extends) are not in the language at all.
2. The output: each text or variable the template emits is counted as it is rendered,
   and the render stops once the total passes TEMPLATE_MAX_OUTPUT_CHARS.
3. Time: every loop step and every emitted piece checks a deadline of
   TEMPLATE_MAX_RENDER_SECONDS, so nested loops over the invoices cannot run for minutes.

Each limit raises TemplateLimitError naming the filter or the limit; dunning.rendering
turns it into a RenderError (the preview shows it, the sender fails the notice with it).
`validate_source` checks a template when it is saved: syntax, unknown tags and filters,
and literal filter widths over the limit, naming the offending filter.
"""

import functools
import re
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import (
    Context,
    Engine,
    Library,
    TemplateSyntaxError,
    defaultfilters,
    defaulttags,
)
from django.template.base import FilterExpression, Node
from django.utils.translation import gettext as _

register = Library()

REFUSED_TAGS = {"csrf_token", "debug", "load", "lorem", "querystring", "url"}
REFUSED_FILTERS = {"pprint"}
# Filters whose argument is a width, a length or a precision.
WIDTH_FILTERS = {
    "center",
    "ljust",
    "rjust",
    "floatformat",
    "stringformat",
    "wordwrap",
    "truncatechars",
    "truncatechars_html",
    "truncatewords",
    "truncatewords_html",
    "urlizetrunc",
}
_NUMBERS = re.compile(r"\d+")


class TemplateLimitError(Exception):
    """A template went over one of its limits (a filter's width, the output, the time)."""


def max_width() -> int:
    return settings.TEMPLATE_MAX_FILTER_WIDTH


def max_output() -> int:
    return settings.TEMPLATE_MAX_OUTPUT_CHARS


def check_width(name: str, arg) -> None:
    """Refuse a width-like argument of `name` over the limit (every number in it counts)."""
    limit = max_width()
    widths = [int(n) for n in _NUMBERS.findall(str(arg)[:100])] or [0]
    if len(str(arg)) > 100 or max(widths) > limit:
        raise TemplateLimitError(
            _("The filter %(filter)s:%(arg)s asks for more than %(limit)d characters.")
            % {"filter": name, "arg": str(arg)[:20], "limit": limit}
        )


def _check_result(name: str, result) -> None:
    if isinstance(result, str | list | tuple) and len(result) > max_output():
        raise TemplateLimitError(
            _("The filter %(filter)s made more than %(limit)d characters.")
            % {"filter": name, "limit": max_output()}
        )


def _bounded(name: str, func):
    @functools.wraps(func)
    def bounded_filter(value, *args, **kwargs):
        if name in WIDTH_FILTERS and args:
            check_width(name, args[0])
        result = func(value, *args, **kwargs)
        _check_result(name, result)
        return result

    return bounded_filter


for _name, _func in defaultfilters.register.filters.items():
    if _name not in REFUSED_FILTERS:
        flags = {
            flag: getattr(_func, flag)
            for flag in ("is_safe", "needs_autoescape", "expects_localtime")
            if hasattr(_func, flag)
        }
        register.filter(_name, _bounded(_name, _func), **flags)
for _name, _compile in defaulttags.register.tags.items():
    if _name not in REFUSED_TAGS:
        register.tag(_name, _compile)


class DebtorEngine(Engine):
    """Only this module's tags and filters: no loaders, no other libraries."""

    default_builtins = ["dunning.template_engine"]


# Unknown variables render as this marker; dunning.rendering finds it and names them.
MISSING = "\x00missing:%s\x00"


@functools.cache
def engine(*, html: bool) -> DebtorEngine:
    return DebtorEngine(autoescape=html, string_if_invalid=MISSING, libraries={})


class _Budget:
    """What a render may still spend: characters, and time until its deadline."""

    def __init__(self):
        self.chars_left = max_output()
        self.seconds = settings.TEMPLATE_MAX_RENDER_SECONDS
        self.deadline = time.monotonic() + self.seconds

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimitError(
                _("The template took longer than %(seconds)s seconds to render.")
                % {"seconds": self.seconds}
            )

    def spend(self, chars: int) -> None:
        self.chars_left -= chars
        if self.chars_left < 0:
            raise TemplateLimitError(
                _("The template made more than %(limit)d characters.") % {"limit": max_output()}
            )
        self.tick()


class BoundedContext(Context):
    """A context that checks the deadline at every loop step ({% for %} sets its variable)."""

    def __init__(self, dict_, *, autoescape: bool, budget: _Budget):
        super().__init__(dict_, autoescape=autoescape)
        self.budget = budget

    def __setitem__(self, key, value):
        self.budget.tick()
        super().__setitem__(key, value)

    def update(self, other_dict):
        self.budget.tick()
        return super().update(other_dict)


def _counted(render_annotated):
    def counted(context):
        output = render_annotated(context)
        context.budget.spend(len(output))
        return output

    return counted


@functools.lru_cache(maxsize=256)
def _compiled(source: str, *, html: bool):
    """The template compiled once per text (the sender renders the same few thousands of
    times); its nodes keep no state between renders, as with Django's cached loader."""
    template = engine(html=html).from_string(source)
    # The pieces that emit text (nodes with no nodes inside) count what they emit.
    for node in template.nodelist.get_nodes_by_type(Node):
        if node.get_nodes_by_type(Node) == [node]:
            node.render_annotated = _counted(node.render_annotated)
    return template


def render(source: str, context: dict, *, html: bool = False) -> str:
    """The template rendered within its limits; TemplateLimitError past one of them.

    Raises TemplateSyntaxError for a template that does not compile.
    """
    template = _compiled(source, html=html)
    budget = _Budget()
    rendered = template.render(BoundedContext(context, autoescape=html, budget=budget))
    if len(rendered) > max_output():
        budget.spend(len(rendered))
    return rendered


def _filter_expressions(node: Node):
    for value in vars(node).values():
        items = list(value.values()) if isinstance(value, dict) else value
        if isinstance(items, list | tuple):
            yield from (item for item in items if isinstance(item, FilterExpression))
        elif isinstance(value, FilterExpression):
            yield value


def validate_source(source: str, *, html: bool = False) -> None:
    """Refuse (ValidationError) a template that does not compile, or asks a filter for a
    literal width over the limit, naming the filter."""
    try:
        template = engine(html=html).from_string(source or "")
    except TemplateSyntaxError as exc:
        raise ValidationError(_("Template error: %(error)s") % {"error": exc}) from exc
    problems = []
    for node in template.nodelist.get_nodes_by_type(Node):
        for expression in _filter_expressions(node):
            for func, args in expression.filters:
                name = getattr(func, "_filter_name", "")
                if name not in WIDTH_FILTERS or not args:
                    continue
                is_lookup, arg = args[0]  # a bare number is a lookup with a literal value
                value = arg.literal if is_lookup else arg
                if value is None:
                    continue  # a variable: checked when rendered
                try:
                    check_width(name, value)
                except TemplateLimitError as exc:
                    problems.append(str(exc))
    if problems:
        raise ValidationError(list(dict.fromkeys(problems)))

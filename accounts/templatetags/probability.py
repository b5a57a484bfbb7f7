"""Probabilities (0 to 1, e.g. of paying late) as the console shows them: whole percents."""

from decimal import ROUND_HALF_UP, Decimal

from django import template

register = template.Library()


def format_percent(value) -> str:
    """Decimal("0.7349") -> "73%"; None or "" -> "—"."""
    if value is None or value == "":
        return "—"
    percent = (Decimal(str(value)) * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    return f"{percent}%"


@register.filter
def percent(value):
    return format_percent(value)

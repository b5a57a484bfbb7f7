"""Template filters that show money the one way (accounts.money): `{{ total|money:currency }}`
gives "EUR 20,016.80", `{{ total|amount:currency }}` gives "20,016.80" (no code)."""

from django import template

from accounts.money import format_amount, format_money

register = template.Library()


@register.filter
def money(value, currency):
    return format_money(value, currency)


@register.filter
def amount(value, currency):
    return format_amount(value, currency)

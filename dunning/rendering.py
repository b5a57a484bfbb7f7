"""Render notice templates: a sandboxed engine over plain values, loud on unknown variables."""

import datetime as dt
import re
from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.template import Context, Engine, TemplateDoesNotExist, TemplateSyntaxError

from accounts.models import Contact, Customer, Invoice

from .models import Template

# Unknown variables render as this marker; finding it afterwards names the variable.
_MISSING = "\x00missing:%s\x00"
_MISSING_RE = re.compile("\x00missing:(.*?)\x00")

# Only the built-in tags and filters; no loaders, so templates cannot include files, and
# the context holds plain strings, numbers, dates and lists, so nothing can call user code.
_TEXT_ENGINE = Engine(autoescape=False, string_if_invalid=_MISSING, libraries={})
_HTML_ENGINE = Engine(autoescape=True, string_if_invalid=_MISSING, libraries={})


class RenderError(Exception):
    """A template uses a variable the context does not have, or has a syntax error."""


def notice_context(
    *, customer: Customer, invoices: list[Invoice], contact: Contact | None, on: dt.date
) -> dict:
    """The variables a template may use, as plain values."""
    totals: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    lines = []
    for invoice in sorted(invoices, key=lambda i: (i.due_on, i.number)):
        totals[invoice.currency] += invoice.open_balance
        lines.append(
            {
                "number": invoice.number,
                "issued_on": invoice.issued_on.isoformat(),
                "due_on": invoice.due_on.isoformat(),
                "days_past_due": invoice.days_past_due(on),
                "currency": invoice.currency,
                "amount": str(invoice.amount),
                "open_balance": str(invoice.open_balance),
                "pay_link": invoice.pay_link,
            }
        )
    agent = customer.assigned_agent
    return {
        "customer_name": customer.name,
        "customer_ref": customer.external_ref,
        "contact_name": contact.name if contact else customer.name,
        "invoices": lines,
        "invoice_count": len(lines),
        "totals": {currency: str(total) for currency, total in sorted(totals.items())},
        "pay_link": next((line["pay_link"] for line in lines if line["pay_link"]), ""),
        "agent_name": (agent.get_full_name() or agent.get_username()) if agent else "",
        "agent_email": agent.email if agent else "",
        "company_name": settings.COMPANY_NAME,
        "company_email": settings.DEFAULT_FROM_EMAIL,
        "today": on.isoformat(),
    }


def render_string(source: str, context: dict, *, html: bool = False) -> str:
    engine = _HTML_ENGINE if html else _TEXT_ENGINE
    try:
        rendered = engine.from_string(source).render(Context(context, autoescape=html))
    except (TemplateSyntaxError, TemplateDoesNotExist) as exc:
        raise RenderError(f"template error: {exc}") from exc
    missing = sorted(set(_MISSING_RE.findall(rendered)))
    if missing:
        raise RenderError(f"unknown variable(s): {', '.join(missing)}")
    return rendered


def render(template: Template, context: dict) -> dict:
    """Subject, text and HTML of a template for one notice."""
    return {
        "subject": render_string(template.subject, context).strip(),
        "body_text": render_string(template.body_text, context),
        "body_html": render_string(template.body_html, context, html=True)
        if template.body_html
        else "",
    }


GSM_7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)
GSM_7_EXTENDED = set("^{}\\[~]|€")


def sms_segments(text: str) -> int:
    """How many SMS segments a text takes: GSM-7 (160, or 153 per part) or UCS-2 (70 / 67)."""
    if all(char in GSM_7 for char in text):
        length = len(text) + sum(1 for char in text if char in GSM_7_EXTENDED)
        single, part = 160, 153
    else:
        length = len(text.encode("utf-16-le")) // 2
        single, part = 70, 67
    if length <= single:
        return 1
    return -(-length // part)

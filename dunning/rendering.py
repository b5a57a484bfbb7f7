"""Render notice templates: a sandboxed, bounded engine over plain values, loud on unknown
variables (dunning/template_engine.py bounds what a template may produce, in size and time).

`render_notice` is what the sender and the admin preview use: it picks the customer's
translation of the step's template, renders it, and finishes the message with the required
disclosure and the opt-out line (SMS) or unsubscribe link (consumer e-mail).
"""

import datetime as dt
import re
from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.db.models import Q
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.utils import formats, translation
from django.utils.html import linebreaks, urlize
from django.utils.translation import gettext as _

from accounts import portal_links, statement_links
from accounts.models import Contact, Customer, Invoice
from accounts.money import format_amount

from . import template_engine, unsubscribe
from .models import REGIONS, Channel, Disclosure, Template
from .wording import language_candidates, wording

# Unknown variables render as template_engine.MISSING; finding it afterwards names them.
_MISSING_RE = re.compile("\x00missing:(.*?)\x00")


class RenderError(Exception):
    """A template uses a variable the context does not have, has a syntax error, or went
    over a limit (a filter's width, the output's size, the render's time)."""


def notice_context(
    *, customer: Customer, invoices: list[Invoice], contact: Contact | None, on: dt.date
) -> dict:
    """The variables a template may use, as plain values.

    Every payment link is filled: an invoice's own pay link (Stripe or PAY_LINK_TEMPLATE,
    see integrations/gateways/paylinks.py) where it has one, else the contact's portal link
    (`portal_url`, also `statement_url`; accounts/portal_links.py), which logs the debtor
    into the portal to see, pay, promise or dispute, or the customer's signed statement
    page when the message has no contact.
    """
    totals: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    lines = []
    # The contact's own portal link where the message has a contact (it logs them in); the
    # customer's statement page otherwise (a letter to the customer, say).
    if contact is not None and contact.pk:
        statement_url = portal_links.portal_url(contact)
    else:
        statement_url = statement_links.statement_url(customer)
    # Amounts and dates as plain ISO values, and as `*_display` in the customer's language
    # (Django's locale formats: 1.234,50 and "30. November 2026" in German), from Decimal
    # and date objects, never through float.
    with translation.override(customer.language or settings.LANGUAGE_CODE):
        for invoice in sorted(invoices, key=lambda i: (i.due_on, i.number)):
            totals[invoice.currency] += invoice.open_balance
            lines.append(
                {
                    "number": invoice.number,
                    "issued_on": invoice.issued_on.isoformat(),
                    "due_on": invoice.due_on.isoformat(),
                    "due_on_display": date_display(invoice.due_on),
                    "days_past_due": invoice.days_past_due(on),
                    "currency": invoice.currency,
                    "amount": str(invoice.amount),
                    "amount_display": amount_display(invoice.amount, invoice.currency),
                    "open_balance": str(invoice.open_balance),
                    "open_balance_display": amount_display(invoice.open_balance, invoice.currency),
                    "pay_link": invoice.pay_link or statement_url,
                    "payment_reference": statement_links.transfer_reference(customer, [invoice]),
                }
            )
        totals_display = {
            currency: amount_display(total, currency) for currency, total in sorted(totals.items())
        }
        today_display = date_display(on)
    agent = customer.assigned_agent
    return {
        "customer_name": customer.name,
        "customer_ref": customer.external_ref,
        "contact_name": contact.name if contact else customer.name,
        "invoices": lines,
        "invoice_count": len(lines),
        "totals": {currency: str(total) for currency, total in sorted(totals.items())},
        "totals_display": totals_display,
        "pay_link": next(
            (invoice.pay_link for invoice in invoices if invoice.pay_link), statement_url
        ),
        "statement_url": statement_url,
        "portal_url": statement_url,
        "payment_reference": statement_links.transfer_reference(customer, invoices),
        "bank_details": bank_details_line(),
        "agent_name": (agent.get_full_name() or agent.get_username()) if agent else "",
        "agent_email": agent.email if agent else "",
        "company_name": settings.COMPANY_NAME,
        "company_email": settings.DEFAULT_FROM_EMAIL,
        "today": on.isoformat(),
        "today_display": today_display,
        # Filled in by render_notice; empty here so that plain render() knows them too.
        "disclosure": "",
        "unsubscribe_url": "",
    }


def bank_details_line() -> str:
    """The configured bank-transfer details on one line ("" when none are set)."""
    parts = [
        (_("Bank"), settings.BANK_TRANSFER_BANK_NAME),
        ("IBAN", settings.BANK_TRANSFER_IBAN),
        ("BIC", settings.BANK_TRANSFER_BIC),
        (_("Account"), settings.BANK_TRANSFER_ACCOUNT_NUMBER),
        (_("Routing"), settings.BANK_TRANSFER_ROUTING_NUMBER),
    ]
    shown = [f"{label} {value}" for label, value in parts if value]
    if not shown:
        return ""
    payee = settings.BANK_TRANSFER_PAYEE or settings.COMPANY_NAME
    return ", ".join([payee, *shown])


def empty_variables(template: Template, context: dict) -> list[str]:
    """The variables this template uses that render empty for this context: a top-level
    one ("pay_link"), or one of each invoice line ("invoices.pay_link") empty on a line.
    The preview warns about them; the sender sends as rendered."""
    sources = " ".join([template.subject, template.body_text, template.body_html])
    empty = [
        name
        for name, value in context.items()
        if value in ("", None, [], {}) and name not in ("disclosure", "unsubscribe_url")
        if _places(sources, name)
    ]
    for line in context.get("invoices") or []:
        for name, value in line.items():
            key = f"invoices.{name}"
            if value in ("", None) and key not in empty and re.search(rf"\.{name}\b", sources):
                empty.append(key)
    return empty


def amount_display(value: Decimal, currency: str) -> str:
    """An amount in the active language's format (1.234,50 in German) and its currency's
    minor units (JPY 12.000), from the Decimal: the one formatter, accounts.money."""
    return format_amount(value, currency)


def date_display(value: dt.date) -> str:
    """A date in the active language's format ("30. November 2026" in German)."""
    return formats.date_format(value, "DATE_FORMAT", use_l10n=True)


def render_string(source: str, context: dict, *, html: bool = False) -> str:
    """One template text rendered (Django's built-in tags and filters, bounded; no loaders,
    so templates cannot include files; the context holds plain strings, numbers, dates and
    lists, so nothing can call user code)."""
    try:
        rendered = template_engine.render(source, context, html=html)
    except (TemplateSyntaxError, TemplateDoesNotExist) as exc:
        raise RenderError(f"template error: {exc}") from exc
    except template_engine.TemplateLimitError as exc:
        raise RenderError(f"template limit: {exc}") from exc
    except (ArithmeticError, ValueError, TypeError, RecursionError) as exc:
        raise RenderError(f"template error: {exc.__class__.__name__}: {exc}") from exc
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


def translation_for(template: Template, language: str) -> Template:
    """The active template of the same name and channel in this language, else the one given.

    "de-AT" looks for de-at, then de. The step's own template is the fallback even when no
    translation is active, so a missing translation never stops a notice.
    """
    candidates = language_candidates(language)
    if not candidates or template.language.lower() in candidates:
        return template
    same_language = Q()
    for code in candidates:
        same_language |= Q(language__iexact=code)
    found = {
        t.language.lower(): t
        for t in Template.objects.filter(
            same_language, name=template.name, channel=template.channel, is_active=True
        )
    }
    return next((found[code] for code in candidates if code in found), template)


def disclosure_for(*, customer: Customer, channel: str) -> Disclosure | None:
    """The most specific active disclosure for this customer on this channel, if any.

    A country beats a region (EU) beats any country; then the customer's kind beats "any";
    then the customer's language beats "any". Ties go to the oldest row (Disclosure.clean
    refuses overlapping active rows, so ties only come from data written around it).
    """
    country = (customer.country or "").upper()
    places = ["", *([country] if country else [])]
    places += [region for region, members in REGIONS.items() if country in members]
    languages = Q(language="")
    for code in language_candidates(customer.language):
        languages |= Q(language__iexact=code)
    matches = [
        disclosure
        for disclosure in Disclosure.objects.filter(
            languages,
            is_active=True,
            customer_kind__in=[customer.kind, Disclosure.CustomerKind.ANY],
            jurisdiction__in=places,
        ).order_by("id")
        if channel in (disclosure.channels or [])
    ]
    return max(matches, key=Disclosure.specificity, default=None)


def _places(source: str, variable: str) -> bool:
    """Whether a template uses the variable itself (in a {{ }} or {% %} tag)."""
    return re.search(r"\{[{%][^}]*\b" + variable + r"\b", source) is not None


def _contains(text: str, block: str) -> bool:
    """Whether the text holds the block's words in order, whatever the line breaks."""
    return " ".join(block.split()) in " ".join(text.split())


def _append_text(body: str, addition: str) -> str:
    return f"{body.rstrip()}\n\n{addition}\n"


def _append_html(body: str, addition: str) -> str:
    block = f'<div style="margin-top:1.5em;font-size:12px;color:#555">{addition}</div>'
    end = body.lower().rfind("</body>")
    if end == -1:
        return body + block
    return body[:end] + block + body[end:]


# Non-breaking spaces (French and Spanish digit grouping) are not in the GSM-7 alphabet.
_SMS_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " "})
_STOP = re.compile(r"\bSTOP\b")


def sms_text(body: str, language: str, *, disclosure: str = "") -> str:
    """An SMS as sent: the disclosure, then the opt-out line unless the text has STOP.

    Twilio acts on a STOP reply (so does integrations/twilio.py); the carriers want the
    message to say so. The line is in the template's language (see dunning/wording.py).
    """
    parts = [body.translate(_SMS_SPACES).strip()]
    if disclosure:
        parts.append(disclosure.translate(_SMS_SPACES).strip())
    text = "\n".join(part for part in parts if part)
    if not _STOP.search(text):
        text = f"{text}\n{wording(language)['sms_opt_out']}"
    return text


def render_notice(
    template: Template,
    context: dict,
    *,
    customer: Customer,
    contact: Contact | None,
    channel: str,
    translate: bool = True,
    edited: tuple[str, str] | None = None,
) -> dict:
    """The message a customer receives on this channel, as subject, text, HTML and headers.

    1. The template in the customer's language (`translation_for`), unless translate=False.
       `edited` is a manager's own (subject, text) for this notice instead: taken literally,
       never rendered; the HTML part is that text with its paragraphs. Steps 2 to 4 still
       apply, so an edit can move the disclosure or the opt-out line but never remove them.
    2. The matching disclosure, rendered with the same variables, goes where the template
       puts `{{ disclosure }}`, or is appended to each body that does not.
    3. Consumer e-mail: an unsubscribe link to the contact's signed opt-out page, where the
       template puts `{{ unsubscribe_url }}` or appended, and the List-Unsubscribe and
       List-Unsubscribe-Post (RFC 8058 one-click) headers.
    4. SMS: the opt-out line last, unless the text already says STOP.

    Also returns `template_id`, `language` and `disclosure_id` (what was used) and `labels`
    (fixed wording in that language, for the letter layout).
    """
    if translate:
        template = translation_for(template, customer.language)
    language = template.language
    words = wording(language)
    disclosure = disclosure_for(customer=customer, channel=channel)
    disclosure_text = disclosure_html = ""
    if disclosure is not None:
        disclosure_text = render_string(disclosure.body_text, context).strip()
        disclosure_html = render_string(
            disclosure.body_html or "{{ text|linebreaks }}",
            {**context, "text": disclosure_text},
            html=True,
        ).strip()
    unsubscribe_url = ""
    if (
        channel == Channel.EMAIL
        and customer.kind == Customer.Kind.CONSUMER
        and contact is not None
        and contact.email
    ):
        unsubscribe_url = unsubscribe.url_for(contact)
    text_context = {**context, "disclosure": disclosure_text, "unsubscribe_url": unsubscribe_url}
    html_context = {**text_context, "disclosure": disclosure_html}
    if edited is None:
        subject = render_string(template.subject, text_context).strip()
        body_text = render_string(template.body_text, text_context)
        body_html = (
            render_string(template.body_html, html_context, html=True) if template.body_html else ""
        )
        text_has_disclosure = _places(template.body_text, "disclosure")
        html_has_disclosure = _places(template.body_html, "disclosure")
        text_has_link = _places(template.body_text, "unsubscribe_url")
        html_has_link = _places(template.body_html, "unsubscribe_url")
    else:
        subject, body_text = edited[0].strip(), edited[1]
        body_html = (
            linebreaks(urlize(body_text, nofollow=True, autoescape=True))
            if channel == Channel.EMAIL
            else ""
        )
        # Literal text: the blocks count as there when their words are (any valid link of
        # this contact's counts for the unsubscribe line; tokens differ by the second).
        text_has_disclosure = html_has_disclosure = _contains(body_text, disclosure_text)
        text_has_link = html_has_link = unsubscribe.links_to(body_text, contact)
    headers = {}
    if channel == Channel.SMS:
        body_text = sms_text(
            body_text, language, disclosure="" if text_has_disclosure else disclosure_text
        )
    else:
        if disclosure_text and not text_has_disclosure:
            body_text = _append_text(body_text, disclosure_text)
        if disclosure_html and body_html and not html_has_disclosure:
            body_html = _append_html(body_html, disclosure_html)
    if unsubscribe_url:
        headers = {
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
        if not text_has_link:
            line = words["unsubscribe_line"].format(url=unsubscribe_url)
            body_text = _append_text(body_text, line)
        if body_html and not html_has_link:
            link = render_string(
                '<a href="{{ url }}">{{ text }}</a>',
                {"url": unsubscribe_url, "text": words["unsubscribe_link"]},
                html=True,
            )
            body_html = _append_html(body_html, link)
    return {
        "subject": subject,
        "body_text": body_text,
        "body_html": body_html,
        "headers": headers,
        "template_id": template.pk,
        "language": language,
        "disclosure_id": disclosure.pk if disclosure else None,
        "labels": words,
    }


GSM_7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)
GSM_7_EXTENDED = set("^{}\\[~]|€")


def sent_sms_segments(body: str, language: str) -> int:
    """The segments of an SMS body as sent, with the opt-out line `sms_text` adds."""
    return sms_segments(sms_text(body, language))


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

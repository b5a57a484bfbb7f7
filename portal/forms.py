"""The portal's own forms: signing in and paying. Every error names its field."""

import datetime as dt
from decimal import Decimal, InvalidOperation

from django import forms
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from accounts.models import Invoice
from accounts.money import format_money

MAX_PERIOD_DAYS = 3 * 366


class SignInForm(forms.Form):
    email = forms.EmailField(label=_("Your e-mail address"), max_length=254)


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("The six-digit code from the e-mail"),
        max_length=12,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )


class PeriodForm(forms.Form):
    start = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                self.add_error("end", _("The end comes before the start."))
            elif (end - start).days > MAX_PERIOD_DAYS:
                self.add_error("start", _("Choose a period of at most three years."))
        return data


class PayForm(forms.Form):
    """Which open invoices, how much (all of them, or part with a reason)."""

    class Reason:
        CHOICES = [
            ("", _("Choose a reason")),
            ("cash_flow", _("I cannot pay all of it now")),
            ("disputed", _("I disagree with part of the amount")),
            ("paid_partly", _("Part of it is already paid")),
            ("other", _("Another reason")),
        ]

    invoices = forms.ModelMultipleChoiceField(
        label=_("Invoices to pay"),
        queryset=Invoice.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one invoice.")},
    )
    amount = forms.CharField(
        label=_("Amount to pay"),
        required=False,
        max_length=24,
        help_text=_("Leave empty to pay the invoices in full."),
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    reason = forms.ChoiceField(label=_("Why part of it?"), choices=Reason.CHOICES, required=False)
    note = forms.CharField(
        label=_("Anything we should know"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["invoices"].queryset = (
            Invoice.objects.outstanding().filter(customer=customer).order_by("due_on", "id")
        )
        self.fields["invoices"].label_from_instance = lambda invoice: (
            f"{invoice.number} · {format_money(invoice.open_balance, invoice.currency)}"
            f" · {_('due')} {date_format(invoice.due_on, 'SHORT_DATE_FORMAT')}"
        )

    def clean(self):
        data = super().clean()
        invoices = list(data.get("invoices") or [])
        if not invoices:
            return data
        currencies = {invoice.currency for invoice in invoices}
        if len(currencies) > 1:
            self.add_error("invoices", _("Choose invoices in one currency at a time."))
            return data
        total = sum((invoice.open_balance for invoice in invoices), Decimal("0.00"))
        data["currency"] = currencies.pop()
        data["total"] = total
        raw = (data.get("amount") or "").strip().replace(" ", "")
        if not raw:
            data["amount"] = total
        else:
            if "," in raw and "." not in raw:
                raw = raw.replace(",", ".")
            try:
                amount = Decimal(raw)
            except InvalidOperation:
                self.add_error("amount", _("Write the amount as a number, such as 120.50."))
                return data
            if not amount.is_finite() or amount <= 0:
                self.add_error("amount", _("The amount must be more than zero."))
                return data
            if amount.as_tuple().exponent < -2:
                self.add_error("amount", _("Use at most two decimals."))
                return data
            if amount > total:
                self.add_error(
                    "amount",
                    _("That is more than these invoices owe (%(total)s).") % {"total": total},
                )
                return data
            data["amount"] = amount
        data["partial"] = data["amount"] < total
        if data["partial"] and not data.get("reason"):
            self.add_error("reason", _("Tell us why you are paying part of the amount."))
        return data


def parse_day(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value or "")
    except ValueError:
        return None

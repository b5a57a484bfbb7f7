"""The portal's action forms: what the debtor fills in to promise, dispute, ask for a plan,
set preferences and write to us. They parse and bound the input; the rules are in
portal/actions.py, which every view calls with the cleaned values."""

import datetime as dt
from decimal import Decimal

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from accounts.models import Contact, Invoice
from accounts.money import format_money
from cases import disputes, promises
from cases.models import Dispute

from . import actions

# At most this many invoices are offered in one list (the oldest due first): a debtor with
# more acts on these first, and the page stays quick on a phone.
MOST_INVOICES_SHOWN = 200
ACCEPTED_FILES = ".pdf,.png,.jpg,.jpeg,.txt,application/pdf,image/png,image/jpeg,text/plain"


def invoice_label(invoice: Invoice) -> str:
    return _("%(number)s, due %(due)s, %(open)s open") % {
        "number": invoice.number,
        "due": date_format(invoice.due_on, "SHORT_DATE_FORMAT"),
        "open": format_money(invoice.open_balance, invoice.currency),
    }


class InvoiceCheckboxes(forms.CheckboxSelectMultiple):
    """Each box's id names its invoice (id_invoices_<id>), not its place in the list, so
    a page (or a browser test) finds the same invoice whatever else is open."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if attrs and attrs.get("id"):
            option["attrs"]["id"] = f"{attrs['id']}_{value}"
        return option


class InvoicesField(forms.TypedMultipleChoiceField):
    """Check boxes for the customer's own invoices; any other id is "not one of the
    choices", whether it exists or not."""

    widget = InvoiceCheckboxes

    def __init__(self, invoices, **kwargs):
        kwargs.setdefault("label", _("Invoices"))
        super().__init__(
            coerce=int,
            choices=[(invoice.pk, invoice_label(invoice)) for invoice in invoices],
            error_messages={
                "invalid_choice": _("Choose among your invoices."),
                "required": _("Choose at least one invoice."),
            },
            **kwargs,
        )


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class AttachmentsField(forms.FileField):
    """Several files in one input (Django's documented pattern); the checks on content,
    size and number are `actions.check_attachments`'."""

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "widget", MultipleFileInput(attrs={"accept": ACCEPTED_FILES, "multiple": True})
        )
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(one, initial) for one in data if one]
        return [single(data, initial)] if data else []


def _attachments_help() -> str:
    return _("Up to %(n)d files (PDF, PNG, JPEG or plain text), %(size)s each at most.") % {
        "n": settings.PORTAL_UPLOAD_MAX_FILES,
        "size": filesizeformat(settings.PORTAL_UPLOAD_MAX_BYTES),
    }


def _date_input(first: dt.date | None = None, last: dt.date | None = None) -> forms.DateInput:
    attrs = {"type": "date"}
    if first is not None:
        attrs["min"] = first.isoformat()
    if last is not None:
        attrs["max"] = last.isoformat()
    return forms.DateInput(attrs=attrs, format="%Y-%m-%d")


def _outstanding(customer, statuses):
    return list(
        Invoice.objects.filter(customer=customer, status__in=statuses).order_by("due_on", "pk")[
            :MOST_INVOICES_SHOWN
        ]
    )


class PromiseForm(forms.Form):
    def __init__(self, *args, customer, today: dt.date, **kwargs):
        super().__init__(*args, **kwargs)
        last = today + dt.timedelta(days=settings.PORTAL_PROMISE_MAX_DAYS)
        share = Decimal(str(settings.PORTAL_PROMISE_MIN_SHARE)) * 100
        self.fields["invoices"] = InvoicesField(
            _outstanding(customer, promises.OUTSTANDING),
            help_text=_("The invoices your payment is for."),
        )
        self.fields["amount"] = forms.DecimalField(
            label=_("Amount you will pay"),
            max_digits=14,
            decimal_places=2,
            min_value=Decimal("0.01"),
            help_text=_("At least %(share)s%% of what is open on the chosen invoices.")
            % {"share": f"{share.normalize():f}"},
            widget=forms.NumberInput(attrs={"step": "0.01", "min": "0.01", "inputmode": "decimal"}),
        )
        self.fields["promised_on"] = forms.DateField(
            label=_("Pay by"),
            help_text=_("Between today and %(date)s.")
            % {"date": date_format(last, "SHORT_DATE_FORMAT")},
            widget=_date_input(today, last),
            input_formats=["%Y-%m-%d"],
        )

    @property
    def has_choices(self) -> bool:
        return bool(self.fields["invoices"].choices)


class DisputeForm(forms.Form):
    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["invoices"] = InvoicesField(
            _outstanding(customer, disputes.DISPUTABLE),
            help_text=_("The invoices you dispute."),
        )
        self.fields["reason"] = forms.ChoiceField(
            label=_("Reason"), choices=[("", _("Choose a reason")), *Dispute.Reason.choices]
        )
        self.fields["message"] = forms.CharField(
            label=_("What is wrong?"),
            max_length=actions.MESSAGE_MAX_CHARS,
            widget=forms.Textarea(attrs={"rows": 6}),
        )
        self.fields["attachments"] = AttachmentsField(
            label=_("Attachments (optional)"), help_text=_attachments_help()
        )

    @property
    def has_choices(self) -> bool:
        return bool(self.fields["invoices"].choices)


class PlanForm(forms.Form):
    def __init__(self, *args, customer, today: dt.date, **kwargs):
        super().__init__(*args, **kwargs)
        last = today + dt.timedelta(days=settings.PORTAL_PLAN_FIRST_DUE_MAX_DAYS)
        self.fields["invoices"] = InvoicesField(
            list(actions.plannable_invoices(customer)[:MOST_INVOICES_SHOWN]),
            help_text=_("The invoices to pay in installments, all in one currency."),
        )
        self.fields["installments"] = forms.IntegerField(
            label=_("Number of monthly installments"),
            min_value=1,
            max_value=actions.MOST_INSTALLMENTS_ASKED,
            help_text=_(
                "Up to %(n)d installments of at least %(least)s each are accepted at once; "
                "other plans go to our team for approval."
            )
            % {
                "n": settings.PORTAL_PLAN_MAX_INSTALLMENTS,
                "least": settings.PORTAL_PLAN_MIN_INSTALLMENT,
            },
            widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        )
        self.fields["first_due_on"] = forms.DateField(
            label=_("First installment on"),
            help_text=_("Between today and %(date)s; the others follow monthly.")
            % {"date": date_format(last, "SHORT_DATE_FORMAT")},
            widget=_date_input(today, last),
            input_formats=["%Y-%m-%d"],
        )

    @property
    def has_choices(self) -> bool:
        return bool(self.fields["invoices"].choices)


OPT_OUT_LABELS = (
    ("email", _("E-mail")),
    ("sms", _("SMS")),
    ("call", _("Phone calls")),
)


class PreferencesForm(forms.Form):
    """Language always; the contact's own preferences only when we know the contact."""

    def __init__(self, *args, customer, contact, **kwargs):
        initial = {"language": customer.language}
        if contact is not None:
            initial |= {
                "preferred_channel": contact.preferred_channel,
                "email": contact.email,
                "phone": contact.phone,
                "opted_out": [c for c in actions.OPT_OUT_CHANNELS if contact.has_opted_out(c)],
            }
        super().__init__(*args, initial=initial, **kwargs)
        self.fields["language"] = forms.ChoiceField(
            label=_("Language"), choices=actions.language_choices()
        )
        if contact is None:
            return
        self.fields["preferred_channel"] = forms.ChoiceField(
            label=_("How we should reach you"),
            choices=[("", _("No preference")), *Contact.Channel.choices],
            required=False,
        )
        self.fields["email"] = forms.CharField(
            label=_("E-mail address"),
            max_length=254,
            required=bool(contact.email),  # a contact reached by SMS only may have none
            widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        )
        self.fields["phone"] = forms.CharField(
            label=_("Phone number"),
            max_length=32,
            required=False,
            help_text=_("In international form, e.g. +44 20 7946 0000."),
            widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
        )
        self.fields["opted_out"] = forms.MultipleChoiceField(
            label=_("Do not contact me by"),
            choices=OPT_OUT_LABELS,
            required=False,
            widget=forms.CheckboxSelectMultiple,
        )


class MessageForm(forms.Form):
    subject = forms.CharField(label=_("Subject"), max_length=200)
    text = forms.CharField(
        label=_("Your message"),
        max_length=actions.MESSAGE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 8}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attachments"] = AttachmentsField(
            label=_("Attachments (optional)"), help_text=_attachments_help()
        )

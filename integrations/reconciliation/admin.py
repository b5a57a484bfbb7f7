"""The reconciliation console: the review queue and the unapplied cash queue.

Finance decides the proposals the engine was not sure enough to book, and applies
unapplied cash by hand. Every booking goes through `accounts.services.allocate` (via
`integrations.reconciliation.matching`), never around it.
"""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from accounts.models import Invoice, Payment
from accounts.money import format_money
from accounts.selectors import search_invoices

from ..intake.admin import ReadOnlyAdmin
from ..models import MatchProposal
from . import matching

TEMPLATES = "admin/integrations/reconciliation"


def unapplied_search(term: str) -> Q:
    """Unapplied cash by what finance knows of it: the remittance text (as stored on the
    payment and, for a bank line, in full), the customer, or the payer's name or account
    as the bank or provider gave them (an IBAN typed with or without its spaces)."""
    query = (
        Q(remittance_reference__icontains=term)
        | Q(customer__name__icontains=term)
        | Q(payer_name__icontains=term)
        | Q(bank_line__remittance__icontains=term)
    )
    account = "".join(term.split())
    if account:
        query |= Q(payer_account__icontains=account)
    return query


def payment_link(payment):
    """A link to the payment's page named as finance knows it ("Bank transfer EUR 1,200.00
    on 2026-11-02"), or a dash when there is none."""
    if payment is None:
        return "—"
    url = reverse("admin:accounts_payment_change", args=[payment.pk])
    return format_html('<a href="{}">{}</a>', url, payment)


@admin.register(MatchProposal)
class MatchProposalAdmin(ReadOnlyAdmin):
    """The review queue: matches below the auto-booking confidence, for finance to decide."""

    list_display = [
        "created_at",
        "payment_link",
        "payer",
        "amount",
        "rule",
        "confidence",
        "proposed",
        "explanation",
        "status",
        "decided_by",
    ]
    list_filter = ["status", "rule"]
    list_select_related = ["payment", "payment__customer", "decided_by"]
    search_fields = [
        "=payment__id",
        "payment__remittance_reference",
        "payment__payer_name",
        "payment__payer_account",
    ]
    readonly_fields = [
        "payment_link",
        "rule",
        "confidence",
        "proposed",
        "explanation",
        "status",
        "decided_by",
        "decided_at",
        "created_at",
    ]
    fields = readonly_fields
    actions = ["accept", "reject"]
    change_list_template = f"{TEMPLATES}/proposal_change_list.html"

    @admin.display(description=_("payment"))
    def payment_link(self, proposal):
        return payment_link(proposal.payment)

    @admin.display(description=_("payer"))
    def payer(self, proposal):
        return proposal.payment.customer or proposal.payment.sender or "—"

    @admin.display(description=_("amount"))
    def amount(self, proposal):
        return format_money(proposal.payment.amount, proposal.payment.currency)

    @admin.display(description=_("allocations proposed"))
    def proposed(self, proposal):
        numbers = dict(proposal.invoices().values_list("pk", "number"))
        return format_html_join(
            ", ",
            "{} {}",
            (
                (numbers.get(line["invoice"], line["invoice"]), line["amount"])
                for line in proposal.lines
            ),
        )

    def has_review_match_permission(self, request):
        return request.user.has_perm("integrations.review_match")

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_allocate": request.user.has_perm("accounts.add_allocation"),
        }
        return super().changelist_view(request, extra_context)

    @admin.action(
        description=_("Accept: book the proposed allocations"), permissions=["review_match"]
    )
    def accept(self, request, queryset):
        self._decide(request, queryset, matching.accept_proposal, _("accepted"))

    @admin.action(
        description=_("Reject: leave the payment unapplied"), permissions=["review_match"]
    )
    def reject(self, request, queryset):
        self._decide(request, queryset, matching.reject_proposal, _("rejected"))

    def _decide(self, request, queryset, decide, verb):
        done = 0
        for proposal in queryset.filter(status=MatchProposal.Status.PENDING):
            try:
                decide(proposal=proposal, by=request.user)
            except ValidationError as exc:
                self.message_user(
                    request,
                    _("Proposal %(id)s not booked: %(e)s")
                    % {"id": proposal.pk, "e": " ".join(exc.messages)},
                    messages.ERROR,
                )
            else:
                done += 1
        if done:
            self.message_user(
                request,
                _("%(n)d proposal(s) %(verb)s.") % {"n": done, "verb": verb},
                messages.SUCCESS,
            )

    # --- the unapplied cash queue -----------------------------------------------------

    def get_urls(self):
        return [
            path(
                "unapplied/",
                self.admin_site.admin_view(self.unapplied_view),
                name="integrations_unapplied_cash",
            ),
            path(
                "unapplied/<int:payment_id>/",
                self.admin_site.admin_view(self.allocate_view),
                name="integrations_unapplied_allocate",
            ),
            *super().get_urls(),
        ]

    def unapplied_view(self, request):
        """Payments with money not yet applied, oldest first (the partial index serves it)."""
        if not request.user.has_perm("accounts.add_allocation"):
            raise PermissionDenied
        payments = (
            Payment.objects.filter(unallocated_amount__gt=0, kind=Payment.Kind.PAYMENT)
            .select_related("customer", "bank_line")
            .order_by("received_on", "pk")
        )
        term = request.GET.get("q", "").strip()
        if term:
            payments = payments.filter(unapplied_search(term))
        page = Paginator(payments, 50).get_page(request.GET.get("p"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Unapplied cash"),
            "page": page,
            "q": term,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, f"{TEMPLATES}/unapplied_list.html", context)

    def allocate_view(self, request, payment_id):
        """Apply one payment to one or several invoices, each with an amount."""
        if not request.user.has_perm("accounts.add_allocation"):
            raise PermissionDenied
        payment = get_object_or_404(
            Payment.objects.select_related("customer", "bank_line"), pk=payment_id
        )
        formset = SplitFormSet(
            request.POST or None, form_kwargs={"payment": payment}, prefix="split"
        )
        if request.method == "POST" and formset.is_valid():
            splits = [
                (form.cleaned_data["invoice"], form.cleaned_data["amount"])
                for form in formset.forms
                if form.cleaned_data.get("invoice")
            ]
            try:
                with transaction.atomic():
                    matching.allocate_by_hand(payment=payment, splits=splits, by=request.user)
            except ValidationError as exc:
                formset._non_form_errors = formset.error_class(exc.messages)
            else:
                self.message_user(
                    request,
                    _("%(n)d allocation(s) booked for payment %(id)s.")
                    % {"n": len(splits), "id": payment.pk},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:integrations_unapplied_cash"))
        term = request.GET.get("q", "").strip()
        candidates = Invoice.objects.outstanding().filter(currency=payment.currency)
        if payment.customer_id:
            candidates = candidates.filter(customer_id=payment.customer_id)
        if term:
            candidates = search_invoices(candidates, term)
        elif not payment.customer_id:
            candidates = candidates.none()
        context = {
            **self.admin_site.each_context(request),
            "title": _("Allocate payment %(id)s") % {"id": payment.pk},
            "payment": payment,
            "formset": formset,
            "candidates": candidates.select_related("customer").order_by("due_on", "pk")[:50],
            "q": term,
            "proposals": payment.proposals.filter(status=MatchProposal.Status.PENDING),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, f"{TEMPLATES}/allocate.html", context)


class SplitForm(forms.Form):
    invoice = forms.CharField(label=_("Invoice number"), max_length=64, required=False)
    amount = forms.DecimalField(
        label=_("Amount"),
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
    )

    def __init__(self, *args, payment, **kwargs):
        self.payment = payment
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        number, amount = (data.get("invoice") or "").strip(), data.get("amount")
        if not number and amount is None:
            data["invoice"] = None
            return data
        if not number:
            raise ValidationError(_("Name the invoice for this amount."))
        if amount is None:
            raise ValidationError(_("Give the amount for %(n)s.") % {"n": number})
        invoices = Invoice.objects.filter(number=number)
        if self.payment.customer_id:
            invoices = invoices.filter(customer_id=self.payment.customer_id)
        found = list(invoices[:2])
        if not found:
            raise ValidationError(
                _("No invoice %(n)s for this payer.") % {"n": number}
                if self.payment.customer_id
                else _("No invoice %(n)s.") % {"n": number}
            )
        if len(found) > 1:
            raise ValidationError(_("Several invoices are numbered %(n)s.") % {"n": number})
        data["invoice"] = found[0]
        return data


class BaseSplitFormSet(forms.BaseFormSet):
    def clean(self):
        if any(self.errors):
            return
        chosen = [f.cleaned_data["invoice"] for f in self.forms if f.cleaned_data.get("invoice")]
        if not chosen:
            raise ValidationError(_("Choose at least one invoice and an amount."))
        if len({invoice.pk for invoice in chosen}) != len(chosen):
            raise ValidationError(_("Each invoice once, please."))


SplitFormSet = forms.formset_factory(SplitForm, formset=BaseSplitFormSet, extra=5, max_num=50)

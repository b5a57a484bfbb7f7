"""The console's inbound messages, and the local outbox's "reply as the debtor".

- *Inbound messages*: read-only; an agent sees the messages of the customers they work,
  managers (accounts.work_all_customers) every one, the unmatched included. A human
  message's page offers the promise (date, amount) and the dispute it suggests, pre-filled
  (actions.suggestion), one click each; the rights are those of the case forms
  (cases.add_promisetopay / cases.add_dispute and working the customer).
- An unmatched message can be filed under a customer by someone who may work it
  (`receive.file_unmatched`): then it is acted on as a matched one.
- *Outbox messages* (dunning's page, extended here): an e-mail kept locally can be
  answered as the debtor (text, one optional file), through the real receive path.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounts import permissions
from accounts.models import Customer, Invoice
from cases.models import Dispute
from dunning.admin import OutboxMessageAdmin
from dunning.models import OutboxMessage

from ..models import InboundAttachment, InboundEmail
from . import actions, outbox, receive

DATE_INPUT = forms.DateInput(attrs={"type": "date"})


class PromiseFromMessageForm(forms.Form):
    invoices = forms.ModelMultipleChoiceField(
        label=_("invoices"), queryset=Invoice.objects.none(), widget=forms.CheckboxSelectMultiple
    )
    promised_on = forms.DateField(label=_("promised date"), widget=DATE_INPUT)
    amount = forms.DecimalField(label=_("amount"), max_digits=14, decimal_places=2)

    def __init__(self, *args, invoices, **kwargs):
        super().__init__(*args, prefix="promise", **kwargs)
        self.fields["invoices"].queryset = invoices


class DisputeFromMessageForm(forms.Form):
    invoices = forms.ModelMultipleChoiceField(
        label=_("invoices"), queryset=Invoice.objects.none(), widget=forms.CheckboxSelectMultiple
    )
    reason = forms.ChoiceField(label=_("reason"), choices=Dispute.Reason.choices)
    description = forms.CharField(
        label=_("description"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )

    def __init__(self, *args, invoices, **kwargs):
        super().__init__(*args, prefix="dispute", **kwargs)
        self.fields["invoices"].queryset = invoices


class FileUnderCustomerForm(forms.Form):
    customer = forms.ModelChoiceField(label=_("customer"), queryset=Customer.objects.all())

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, prefix="file", **kwargs)
        remote = InboundEmail._meta.get_field("customer").remote_field
        self.fields["customer"].widget = ForeignKeyRawIdWidget(remote, admin_site)


class ReplyAsDebtorForm(forms.Form):
    text = forms.CharField(label=_("Reply text"), widget=forms.Textarea(attrs={"rows": 6}))
    attachment = forms.FileField(label=_("Attachment (optional)"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, auto_id="id_reply_%s", **kwargs)


class InboundAttachmentInline(admin.TabularInline):
    model = InboundAttachment
    fields = ["filename", "content_type", "size", "download", "refused_reason"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False

    @admin.display(description=_("file"))
    def download(self, attachment):
        if not attachment.file:
            return "—"
        url = reverse(
            "admin:integrations_inboundemail_attachment",
            args=[attachment.email_id, attachment.pk],
        )
        return format_html('<a href="{}">{}</a>', url, _("download"))


class MatchedFilter(admin.SimpleListFilter):
    title = _("customer found")
    parameter_name = "matched"

    def lookups(self, request, model_admin):
        return [("yes", _("Matched")), ("no", _("Unmatched"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(customer=None)
        if self.value() == "no":
            return queryset.filter(customer=None)
        return queryset


@admin.register(InboundEmail)
class InboundEmailAdmin(admin.ModelAdmin):
    change_form_template = "integrations/inbound_email_change_form.html"
    list_display = [
        "received_at",
        "source",
        "customer_link",
        "sender",
        "subject",
        "matched_by",
        "is_automatic",
        "promised_on",
        "promised_amount",
        "dispute_flag",
    ]
    list_filter = [MatchedFilter, "source", "matched_by", "is_automatic"]
    list_select_related = ["customer"]
    search_fields = ["subject", "customer__name", "=message_id"]
    date_hierarchy = "received_at"
    show_facets = admin.ShowFacets.NEVER
    inlines = [InboundAttachmentInline]
    fields = [
        "received_at",
        "source",
        "customer_link",
        "contact",
        "notice",
        "matched_by",
        "match_note",
        "sender",
        "recipient",
        "subject",
        "text",
        "is_automatic",
        "automatic_reason",
        "promised_on",
        "promised_amount",
        "promised_currency",
        "dispute_words",
        "paused_until",
        "task",
        "promise",
        "dispute",
        "message_id",
        "in_reply_to",
        "references",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.has_perm("accounts.work_all_customers"):
            return queryset
        # Agents: their own and unassigned customers; unmatched mail is for managers.
        return queryset.filter(
            Q(customer__assigned_agent=request.user)
            | Q(customer__isnull=False, customer__assigned_agent__isnull=True)
        )

    @admin.display(description=_("customer"), ordering="customer__name")
    def customer_link(self, inbound):
        if inbound.customer_id is None:
            return _("— unmatched —")
        url = reverse("admin:accounts_customer_change", args=[inbound.customer_id])
        return format_html('<a href="{}">{}</a>', url, inbound.customer.name)

    @admin.display(description=_("dispute words"), boolean=True)
    def dispute_flag(self, inbound):
        return inbound.mentions_dispute

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/promise/",
                view(require_POST(self.promise_view)),
                name="integrations_inboundemail_promise",
            ),
            path(
                "<int:pk>/dispute/",
                view(require_POST(self.dispute_view)),
                name="integrations_inboundemail_dispute",
            ),
            path(
                "<int:pk>/file/",
                view(require_POST(self.file_view)),
                name="integrations_inboundemail_file",
            ),
            path(
                "<int:pk>/attachment/<int:attachment_id>/",
                view(self.attachment_view),
                name="integrations_inboundemail_attachment",
            ),
            *super().get_urls(),
        ]

    def _message(self, request, pk: int) -> InboundEmail:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(self.get_queryset(request).select_related("customer"), pk=pk)

    def _may(self, request, inbound: InboundEmail, perm: str) -> bool:
        return (
            inbound.customer is not None
            and not inbound.is_automatic
            and request.user.has_perm(perm)
            and permissions.can_work(request.user, inbound.customer)
        )

    def _invoices(self, inbound: InboundEmail):
        return Invoice.objects.filter(customer=inbound.customer).exclude(
            status__in=[Invoice.Status.CANCELLED, Invoice.Status.WRITTEN_OFF]
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        inbound = self.get_object(request, object_id)
        if inbound is not None and inbound.customer is None:
            extra_context["file_form"] = FileUnderCustomerForm(admin_site=self.admin_site)
        if inbound is not None and inbound.customer is not None and not inbound.is_automatic:
            hint = actions.suggestion(inbound)
            invoices = self._invoices(inbound)
            initial_invoices = [invoice.pk for invoice in hint.invoices]
            if self._may(request, inbound, "cases.add_promisetopay") and inbound.promise is None:
                extra_context["promise_form"] = PromiseFromMessageForm(
                    invoices=invoices,
                    initial={
                        "invoices": initial_invoices,
                        "promised_on": hint.promised_on,
                        "amount": hint.amount,
                    },
                )
            if self._may(request, inbound, "cases.add_dispute") and inbound.dispute is None:
                extra_context["dispute_form"] = DisputeFromMessageForm(
                    invoices=invoices,
                    initial={
                        "invoices": initial_invoices,
                        "reason": hint.reason,
                        "description": hint.description,
                    },
                )
        return super().change_view(request, object_id, form_url, extra_context)

    def _done(self, inbound: InboundEmail):
        return HttpResponseRedirect(
            reverse("admin:integrations_inboundemail_change", args=[inbound.pk])
        )

    def _refused(self, request, form_errors) -> None:
        for field, errors in form_errors.items():
            for error in errors:
                label = "" if field in ("__all__", None) else f"{field}: "
                self.message_user(request, f"{label}{error}", messages.ERROR)

    def promise_view(self, request, pk):
        inbound = self._message(request, pk)
        if not self._may(request, inbound, "cases.add_promisetopay"):
            raise PermissionDenied
        form = PromiseFromMessageForm(request.POST, invoices=self._invoices(inbound))
        if not form.is_valid():
            self._refused(request, form.errors)
            return self._done(inbound)
        try:
            promise = actions.record_promise(
                inbound=inbound,
                invoices=form.cleaned_data["invoices"],
                amount=form.cleaned_data["amount"],
                promised_on=form.cleaned_data["promised_on"],
                by=request.user,
            )
        except ValidationError as exc:
            self._refused(request, getattr(exc, "message_dict", {None: exc.messages}))
            return self._done(inbound)
        self.message_user(
            request,
            _("Promise recorded: %(currency)s %(amount)s by %(day)s.")
            % {"currency": promise.currency, "amount": promise.amount, "day": promise.promised_on},
            messages.SUCCESS,
        )
        return self._done(inbound)

    def dispute_view(self, request, pk):
        inbound = self._message(request, pk)
        if not self._may(request, inbound, "cases.add_dispute"):
            raise PermissionDenied
        form = DisputeFromMessageForm(request.POST, invoices=self._invoices(inbound))
        if not form.is_valid():
            self._refused(request, form.errors)
            return self._done(inbound)
        try:
            dispute = actions.open_dispute(
                inbound=inbound,
                invoices=form.cleaned_data["invoices"],
                reason=form.cleaned_data["reason"],
                description=form.cleaned_data["description"],
                by=request.user,
            )
        except ValidationError as exc:
            self._refused(request, getattr(exc, "message_dict", {None: exc.messages}))
            return self._done(inbound)
        self.message_user(
            request,
            _("Dispute #%(pk)s opened; dunning holds for its invoices.") % {"pk": dispute.pk},
            messages.SUCCESS,
        )
        return self._done(inbound)

    def file_view(self, request, pk):
        inbound = self._message(request, pk)
        form = FileUnderCustomerForm(request.POST, admin_site=self.admin_site)
        if not form.is_valid():
            self._refused(request, form.errors)
            return self._done(inbound)
        try:
            receive.file_unmatched(
                inbound=inbound, customer=form.cleaned_data["customer"], by=request.user
            )
        except ValidationError as exc:
            self._refused(request, getattr(exc, "message_dict", {None: exc.messages}))
            return self._done(inbound)
        self.message_user(
            request,
            _("Filed under %(name)s: on its timeline, with a task for its agent.")
            % {"name": form.cleaned_data["customer"].name},
            messages.SUCCESS,
        )
        return self._done(inbound)

    def attachment_view(self, request, pk, attachment_id):
        inbound = self._message(request, pk)
        attachment = get_object_or_404(InboundAttachment, pk=attachment_id, email=inbound)
        if not attachment.file:
            raise Http404
        return FileResponse(
            attachment.file.open("rb"),
            as_attachment=True,
            filename=attachment.filename,
            content_type=attachment.content_type or "application/octet-stream",
        )


class OutboxReplyAdmin(OutboxMessageAdmin):
    """The outbox page, plus a form to answer a kept e-mail as the debtor (local only)."""

    change_form_template = "integrations/inbound_outbox_change_form.html"

    def get_urls(self):
        return [
            path(
                "<int:pk>/reply/",
                self.admin_site.admin_view(require_POST(self.reply_view)),
                name="dunning_outboxmessage_reply",
            ),
            *super().get_urls(),
        ]

    def _may_reply(self, request, message: OutboxMessage | None) -> bool:
        return (
            message is not None
            and message.channel == "email"
            and outbox.is_local_outbox()
            and self.has_view_permission(request, message)
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        message = self.get_object(request, object_id)
        if self._may_reply(request, message):
            extra_context["reply_form"] = ReplyAsDebtorForm()
            extra_context["replies"] = InboundEmail.objects.filter(
                source=InboundEmail.Source.OUTBOX, in_reply_to=message.message_id
            ).exclude(in_reply_to="")[:20]
        return super().change_view(request, object_id, form_url, extra_context)

    def reply_view(self, request, pk):
        message = get_object_or_404(OutboxMessage, pk=pk)
        if not self._may_reply(request, message):
            raise PermissionDenied
        back = HttpResponseRedirect(reverse("admin:dunning_outboxmessage_change", args=[pk]))
        form = ReplyAsDebtorForm(request.POST, request.FILES)
        if not form.is_valid():
            for field, errors in form.errors.items():
                label = form.fields[field].label if field in form.fields else ""
                for error in errors:
                    self.message_user(request, f"{label}: {error}", messages.ERROR)
            return back
        inbound = outbox.reply_to_outbox(
            outbox=message,
            text=form.cleaned_data["text"],
            attachment=form.cleaned_data["attachment"],
        )
        who = inbound.customer.name if inbound.customer else _("nobody (unmatched)")
        self.message_user(
            request,
            format_html(
                '{} <a href="{}" id="inbound-reply-link">{}</a>',
                _("Reply received for %(who)s:") % {"who": who},
                reverse("admin:integrations_inboundemail_change", args=[inbound.pk]),
                _("inbound message #%(pk)s") % {"pk": inbound.pk},
            ),
            messages.SUCCESS,
        )
        return back


admin.site.unregister(OutboxMessage)
admin.site.register(OutboxMessage, OutboxReplyAdmin)

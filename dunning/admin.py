"""The dunning console: policies, templates with preview, disclosures, thresholds, the outbox."""

import functools

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db.models import Count, Q
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django_celery_beat.models import PeriodicTask

from accounts import forms as account_forms
from accounts.admin import CustomerAction, add_customer_action
from accounts.admin_decisions import Decision, DecisionAdmin
from accounts.models import Customer, Invoice

from . import contact_rules, planner, rendering, sender, services
from .models import (
    MESSAGE_CHANNELS,
    WEEKDAY_NAMES,
    Channel,
    ContactRule,
    Disclosure,
    EmailEvent,
    HighValueThreshold,
    Notice,
    OutboxMessage,
    Policy,
    PublicHoliday,
    Step,
    StepVariant,
    Template,
)
from .sender import SENDABLE


class StepInline(admin.TabularInline):
    model = Step
    extra = 0
    fields = [
        "offset_days",
        "name",
        "channel",
        "template",
        "tone",
        "approval",
        "min_probability_late",
        "is_active",
    ]
    ordering = ["offset_days", "id"]
    show_change_link = True  # the step's own page holds its template variants


class StepVariantInline(admin.TabularInline):
    """A step's template variants (dunning/variants.py); rights follow the step's."""

    model = StepVariant
    extra = 0
    fields = ["label", "template", "weight", "is_active"]
    autocomplete_fields = ["template"]

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("dunning.view_step") or self.has_change_permission(request)

    def has_add_permission(self, request, obj=None):
        return request.user.has_perm("dunning.change_step")

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("dunning.change_step")

    def has_delete_permission(self, request, obj=None):
        return request.user.has_perm("dunning.change_step")


@admin.register(Step)
class StepAdmin(admin.ModelAdmin):
    """One step with its template variants; reached from its policy's page."""

    list_display = ["__str__", "channel", "template", "adaptive_variants", "is_active"]
    list_select_related = ["policy", "template"]
    fields = [
        "policy",
        "name",
        "offset_days",
        "channel",
        "template",
        "tone",
        "approval",
        "is_active",
        "adaptive_variants",
    ]
    readonly_fields = ["policy"]
    inlines = [StepVariantInline]

    def get_model_perms(self, request):
        return {}  # listed on its policy's page, not on the index

    def has_add_permission(self, request):
        return False  # steps are added on their policy's page


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "segment",
        "risk_band_text",
        "purpose",
        "is_active",
        "step_count",
        "customer_count",
    ]
    list_filter = ["segment", "risk_band", "is_active", "purpose"]
    inlines = [StepInline]

    @admin.display(description=_("for risk band"), ordering="risk_band")
    def risk_band_text(self, policy):
        if not policy.segment:
            return "—"
        return policy.get_risk_band_display() if policy.risk_band else _("any band")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_steps=Count("steps", distinct=True), n_customers=Count("customers", distinct=True)
            )
        )

    @admin.display(description=_("steps"), ordering="n_steps")
    def step_count(self, policy):
        return policy.n_steps

    @admin.display(description=_("customers set to it"), ordering="n_customers")
    def customer_count(self, policy):
        return policy.n_customers


class PreviewForm(forms.Form):
    customer = forms.ModelChoiceField(
        queryset=Customer.objects.all(),
        label=_("Customer"),
        help_text=_("Type part of a name, a reference, an e-mail or a phone number."),
    )
    exact = forms.BooleanField(
        required=False,
        label=_("This template as written"),
        help_text=_("Otherwise: what the sender would send, in the customer's language."),
    )

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        # The console's customer search (a select with autocomplete), not a numeric id.
        field = self.fields["customer"]
        field.widget = AutocompleteSelect(Notice._meta.get_field("customer"), admin_site)
        field.widget.choices = field.choices
        field.widget.is_required = field.required


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "language",
        "channel",
        "tone",
        "is_active",
        "sms_segments",
        "preview_link",
    ]
    list_filter = ["channel", "language", "tone", "is_active"]
    search_fields = ["name", "subject"]

    @admin.display(description=_("SMS segments"))
    def sms_segments(self, template):
        """Counted with the opt-out line the sender appends (variables as written)."""
        if template.channel != "sms":
            return "—"
        return rendering.sent_sms_segments(template.body_text, template.language)

    @admin.display(description=_("preview"))
    def preview_link(self, template):
        url = reverse("admin:dunning_template_preview", args=[template.pk])
        return format_html('<a href="{}">{}</a>', url, _("Preview"))

    def get_urls(self):
        return [
            path(
                "<int:pk>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="dunning_template_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request, pk):
        if not self.has_view_permission(request):
            raise PermissionDenied
        template = get_object_or_404(Template, pk=pk)
        form = PreviewForm(request.GET or None, admin_site=self.admin_site)
        rendered, error, used, disclosure, empty = None, None, None, None, []
        if form.is_valid():
            customer = form.cleaned_data["customer"]
            invoices = list(Invoice.objects.outstanding().filter(customer=customer)[:50])
            contacts = customer.contacts.order_by("-is_primary", "id")
            reachable = {"email": contacts.exclude(email=""), "sms": contacts.exclude(phone="")}
            contact = reachable.get(template.channel, contacts).first() or contacts.first()
            context = rendering.notice_context(
                customer=customer, invoices=invoices, contact=contact, on=timezone.localdate()
            )
            try:
                # As the sender renders it: translation, disclosure and opt-out line included.
                rendered = rendering.render_notice(
                    template,
                    context,
                    customer=customer,
                    contact=contact,
                    channel=template.channel,
                    translate=not form.cleaned_data["exact"],
                )
            except rendering.RenderError as exc:
                error = str(exc)
            else:
                used = Template.objects.get(pk=rendered["template_id"])
                disclosure = Disclosure.objects.filter(pk=rendered["disclosure_id"]).first()
                empty = rendering.empty_variables(used, context)
        return TemplateResponse(
            request,
            "admin/dunning/template_preview.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Preview of %(name)s") % {"name": template},
                "opts": Template._meta,
                "template_obj": template,
                "form": form,
                "rendered": rendered,
                "error": error,
                "used_template": used,
                "disclosure": disclosure,
                "empty_variables": empty,
                "segments": rendering.sms_segments(rendered["body_text"])
                if rendered and template.channel == "sms"
                else None,
            },
        )


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Why?"), max_length=200)


class NoticeTextForm(forms.Form):
    subject = forms.CharField(label=_("Subject"), max_length=200, required=False)
    body_text = forms.CharField(
        label=_("Text"), widget=forms.Textarea(attrs={"rows": 18, "cols": 90}), required=False
    )
    reason = forms.CharField(label=_("Why?"), max_length=200)


def _notice_decision(name, label, perm, service, statuses, action=""):
    """A manager's override on a notice, one of the dunning services, with a reason."""
    return Decision(
        name,
        label,
        perm,
        lambda notice, by, reason: service([notice], by=by, reason=reason),
        form=ReasonForm,
        applies=lambda notice: notice.status in statuses,
        action=action,
        done=_("%(decision)s: %(n)d notice(s)."),
    )


def _cut(text: str, length: int):
    """A long text cut to `length` characters in a list column, whole on hover."""
    if not text:
        return "—"
    if len(text) <= length:
        return text
    return format_html('<span title="{}">{}…</span>', text, text[: length - 1])


@admin.register(Notice)
class NoticeAdmin(DecisionAdmin):
    # Few, narrow columns so Status, Reason and Edit stay on screen at 1280 px: the step
    # with its channel, the status with its "not before", long texts cut (full on hover).
    list_display = [
        "planned_on",
        "customer",
        "step_and_channel",
        "status_text",
        "recipient_short",
        "reason_short",
        "letter",
    ]
    list_filter = ["status", "channel", "step__policy", "planned_on"]
    list_select_related = ["customer", "step", "step__policy"]
    search_fields = ["customer__name", "recipient", "=provider_message_id"]
    # Every field, read-only; the invoices an edited text is for by number, not by id. The
    # stored letter is shown as a link to the permission-checked letter view: the file
    # field's own link points under MEDIA_URL, which nothing serves (letters are personal
    # data).
    readonly_fields = [
        *(
            "edited_invoice_numbers" if f.name == "edited_invoices" else f.name
            for f in Notice._meta.fields
            if f.name != "document"
        ),
        "letter_pdf",
        "text_to_go_out",
        "invoices_planned",
    ]
    fields = readonly_fields
    change_form_template = "admin/dunning/notice/change_form.html"
    decisions = (
        _notice_decision(
            "approve", _("Approve"), "dunning.approve_notice", services.approve, services.DECIDABLE
        ),
        _notice_decision(
            "reject", _("Reject"), "dunning.approve_notice", services.reject, services.DECIDABLE
        ),
        _notice_decision(
            "skip", _("Skip this step"), "dunning.send_notice_now", services.skip, services.OPEN
        ),
        _notice_decision(
            "send-now",
            _("Send now"),
            "dunning.send_notice_now",
            services.send_now,
            services.OPEN,
            action="send_now",
        ),
        # Left sending by a worker that died: did it go out? A manager decides.
        _notice_decision(
            "mark-sent",
            _("Mark as sent (it did go out)"),
            sender.RESOLVE_PERMISSION,
            sender.mark_sent,
            (Notice.Status.UNCERTAIN,),
            action="mark_sent",
        ),
        _notice_decision(
            "send-again",
            _("Send again (it did not go out)"),
            sender.RESOLVE_PERMISSION,
            sender.send_again,
            (Notice.Status.UNCERTAIN,),
            action="send_again",
        ),
    )
    show_facets = admin.ShowFacets.NEVER
    change_list_template = "admin/dunning/notice/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        """Managers see how many notices are uncertain (may or may not have gone out)."""
        extra_context = {**(extra_context or {}), "uncertain_count": sender.uncertain_count()}
        return super().changelist_view(request, extra_context=extra_context)

    def get_list_display(self, request):
        if request.user.has_perm("dunning.approve_notice"):
            return [*self.list_display, "edit_link"]
        return self.list_display

    @admin.display(description=_("step"), ordering="step__offset_days")
    def step_and_channel(self, notice):
        return f"{notice.step.name} · {notice.get_channel_display()}"

    @admin.display(description=_("status"), ordering="status")
    def status_text(self, notice):
        if notice.not_before_at and notice.status in services.OPEN:
            moment = date_format(timezone.localtime(notice.not_before_at), "SHORT_DATETIME_FORMAT")
            return _("%(status)s, not before %(moment)s") % {
                "status": notice.get_status_display(),
                "moment": moment,
            }
        return notice.get_status_display()

    @admin.display(description=_("recipient"), ordering="recipient")
    def recipient_short(self, notice):
        return _cut(notice.recipient, 32)

    @admin.display(description=_("reason"))
    def reason_short(self, notice):
        return _cut(notice.reason, 60)

    @admin.display(description=_("invoices the edited text is for"))
    def edited_invoice_numbers(self, notice):
        numbers = Invoice.objects.filter(pk__in=notice.edited_invoices).values_list(
            "number", flat=True
        )
        return ", ".join(sorted(numbers)) or "—"

    @admin.display(description=_("text"))
    def edit_link(self, notice):
        if notice.status not in services.OPEN or notice.channel not in services.EDITABLE_CHANNELS:
            return "—"
        url = reverse("admin:dunning_notice_edit", args=[notice.pk])
        label = _("Edited") if notice.edited_at else _("Edit")
        return format_html('<a href="{}">{}</a>', url, label)

    def edit_view(self, request, pk):
        """A manager rewrites a notice before it goes out (and may approve it at once)."""
        if not request.user.has_perm("dunning.approve_notice"):
            raise PermissionDenied
        notice = get_object_or_404(
            Notice.objects.select_related("customer", "step", "step__template"), pk=pk
        )
        editable = notice.status in services.OPEN and notice.channel in services.EDITABLE_CHANNELS
        current = services.draft(notice)
        form = NoticeTextForm(
            request.POST if request.method == "POST" else None,
            initial={"subject": current["subject"], "body_text": current["body_text"]},
        )
        if request.method == "POST" and editable and form.is_valid():
            try:
                services.edit_notice(
                    notice,
                    by=request.user,
                    subject=form.cleaned_data["subject"],
                    body_text=form.cleaned_data["body_text"],
                    reason=form.cleaned_data["reason"],
                    approve="_approve" in request.POST,
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                self.message_user(request, _("The text is saved."))
                changelist = reverse("admin:dunning_notice_changelist")
                return HttpResponseRedirect(f"{changelist}?status__exact={notice.status}")
        segments = 0
        if notice.channel == Channel.SMS:
            text = form.data.get("body_text", current["body_text"])
            segments = rendering.sent_sms_segments(text, notice.customer.language)
        return TemplateResponse(
            request,
            "admin/dunning/notice/edit.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Edit the text of “%(notice)s”") % {"notice": notice},
                "opts": Notice._meta,
                "notice": notice,
                "form": form,
                "editable": editable,
                "current": current,
                "segments": segments,
                "is_sms": notice.channel == Channel.SMS,
                "can_approve": notice.status == Notice.Status.AWAITING_APPROVAL,
            },
        )

    @admin.display(description=_("letter"))
    def letter(self, notice):
        if not notice.document:
            return "—"
        url = reverse("admin:dunning_notice_letter", args=[notice.pk])
        return format_html('<a href="{}">{}</a>', url, _("PDF"))

    @admin.display(description=_("letter (PDF)"))
    def letter_pdf(self, notice):
        if not notice.document:
            return "—"
        url = reverse("admin:dunning_notice_letter", args=[notice.pk])
        return format_html('<a href="{}">{}</a>', url, _("Download the letter (PDF)"))

    @admin.display(description=_("invoices, as planned"))
    def invoices_planned(self, notice):
        """Each invoice the planner listed, with its predicted probability of paying late
        that night: why a step with a threshold applied."""
        lines = notice.lines.select_related("invoice").order_by("invoice__due_on", "invoice_id")
        rows = [
            (
                line.invoice.number,
                _("predicted %(probability)s likely to be paid late")
                % {"probability": f"{line.probability_late:.0%}"}
                if line.probability_late is not None
                else _("no prediction"),
            )
            for line in lines
        ]
        if not rows:
            return "—"
        threshold = notice.step.min_probability_late
        note = (
            _("This step applies from %(threshold)s.") % {"threshold": f"{threshold:.0%}"}
            if threshold is not None
            else ""
        )
        return format_html(
            "<ul>{}</ul>{}",
            format_html_join("", "<li>{}: {}</li>", rows),
            format_html("<p>{}</p>", note) if note else "",
        )

    @admin.display(description=_("text as it would go out now"))
    def text_to_go_out(self, notice):
        """For a notice not sent yet (awaiting approval above all): the text the sender
        would send now, so a manager reads what they approve. Sent ones show their text."""
        if notice.status not in services.OPEN or notice.channel not in services.EDITABLE_CHANNELS:
            return "—"
        current = services.draft(notice)
        if current["error"]:
            return format_html('<p class="errornote">{}</p>', current["error"])
        invoices = ", ".join(invoice.number for invoice in current["invoices"]) or "—"
        return format_html(
            '<div class="notice-draft"><p><strong>{}</strong></p>'
            '<pre style="white-space:pre-wrap;max-width:60em">{}</pre>'
            "<p>{} {}</p></div>",
            current["subject"],
            current["body_text"],
            _("Invoices:"),
            invoices,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The notice's page, with Approve and Reject under its text for a manager."""
        notice = self.get_object(request, object_id)
        decide = []
        if notice is not None and notice.status in services.DECIDABLE:
            decide = [
                (reverse(f"admin:dunning_notice_{decision.name}", args=[notice.pk]), decision)
                for decision in self.decisions
                if decision.name in ("approve", "reject") and request.user.has_perm(decision.perm)
            ]
        extra_context = {
            **(extra_context or {}),
            "decide_urls": decide,
            "reason_form": ReasonForm(),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def letter_view(self, request, pk):
        """The stored letter, to the console's users only (letters are personal data)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        notice = get_object_or_404(Notice, pk=pk)
        if not notice.document:
            raise Http404
        return FileResponse(
            notice.document.open("rb"),
            content_type="application/pdf",
            filename=f"letter-{notice.pk}.pdf",
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/letter/",
                self.admin_site.admin_view(self.letter_view),
                name="dunning_notice_letter",
            ),
            path(
                "<int:pk>/edit/",
                self.admin_site.admin_view(self.edit_view),
                name="dunning_notice_edit",
            ),
            path(
                "tonight/",
                self.admin_site.admin_view(self.tonight_view),
                name="dunning_notice_tonight",
            ),
            *super().get_urls(),
        ]

    def tonight_view(self, request):
        """What tonight's run will plan (the planner run and rolled back), and the notices
        already planned that the sender has not taken yet."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = TonightForm(request.GET or None)
        on = planner.next_run_on(timezone.now(), **_night_time())
        if form.is_valid() and form.cleaned_data["on"]:
            on = form.cleaned_data["on"]
        try:
            forecast = planner.forecast(on=on)
        except planner.PlannerBusy:
            forecast = planner.PlanResult()
            self.message_user(
                request,
                _("The planner is running right now; look again in a minute."),
                messages.WARNING,
            )
        pending = Notice.objects.filter(
            Q(status__in=SENDABLE) | Q(status=Notice.Status.AWAITING_APPROVAL)
        )
        waiting = (
            pending.values(
                "step__policy__name",
                "step__name",
                "channel",
                "status",
                "customer__assigned_agent__username",
            )
            .annotate(notices=Count("pk", distinct=True), invoices=Count("lines"))
            .order_by("step__policy__name", "step__offset_days", "channel")
        )
        return TemplateResponse(
            request,
            "admin/dunning/tonight.html",
            {
                **self.admin_site.each_context(request),
                "title": _("What will go out tonight"),
                "opts": Notice._meta,
                "form": form,
                "on": on,
                "forecast": [_labelled(row) for row in forecast.forecast],
                "result": forecast,
                "rows": [_labelled(row) for row in waiting],
            },
        )


class TonightForm(forms.Form):
    on = forms.DateField(
        label=_("Run of the day"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Empty: the next nightly run."),
    )


NIGHT_TASK = "collections_mgmt.tasks.run_night"


def _night_time() -> dict:
    """The nightly run's hour and minute, as the beat schedule in the database says
    (managers may retime it under Periodic tasks); 01:30 when it says nothing plain."""
    row = PeriodicTask.objects.filter(task=NIGHT_TASK, crontab__isnull=False).first()
    if row is not None and row.crontab.hour.isdigit() and row.crontab.minute.isdigit():
        return {"hour": int(row.crontab.hour), "minute": int(row.crontab.minute)}
    return {"hour": 1, "minute": 30}


def _labelled(row: dict) -> dict:
    """A summary row with human labels for its channel and status."""
    return {
        **row,
        "channel_label": Channel(row["channel"]).label,
        "status_label": Notice.Status(row["status"]).label,
    }


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """Messages kept locally (no SMTP server or Twilio account configured)."""

    list_display = ["created_at", "channel", "recipient", "subject", "attachment_count"]
    list_filter = ["channel"]
    search_fields = ["recipient", "subject", "=message_id"]
    fields = [
        "created_at",
        "channel",
        "sender",
        "recipient",
        "subject",
        "message_id",
        "header_lines",
        "attachment_links",
        "body_text",
        "body_html",
    ]
    readonly_fields = fields
    show_facets = admin.ShowFacets.NEVER

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("attachments"))
    def attachment_count(self, message):
        return len(message.attachments) or "—"

    @admin.display(description=_("headers"))
    def header_lines(self, message):
        lines = [f"{name}: {value}" for name, value in message.headers.items()]
        return format_html("<pre>{}</pre>", "\n".join(lines)) if lines else "—"

    @admin.display(description=_("attachments"))
    def attachment_links(self, message):
        if not message.attachments:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{}</a> ({}, {} bytes)',
            (
                (
                    reverse("admin:dunning_outboxmessage_attachment", args=[message.pk, n]),
                    item["filename"],
                    item["mimetype"],
                    item["size"],
                )
                for n, item in enumerate(message.attachments)
            ),
        )

    def attachment_view(self, request, pk, n):
        """A kept attachment, to the console's users who may see the outbox."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        message = get_object_or_404(OutboxMessage, pk=pk)
        if n >= len(message.attachments):
            raise Http404
        item = message.attachments[n]
        if not default_storage.exists(item["path"]):
            raise Http404
        return FileResponse(
            default_storage.open(item["path"], "rb"),
            content_type=item["mimetype"],
            as_attachment=True,
            filename=item["filename"],
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/attachment/<int:n>/",
                self.admin_site.admin_view(self.attachment_view),
                name="dunning_outboxmessage_attachment",
            ),
            *super().get_urls(),
        ]


class DisclosureForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(
        label=_("channels"),
        choices=[(channel.value, channel.label) for channel in MESSAGE_CHANNELS],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Disclosure
        fields = [
            "name",
            "customer_kind",
            "jurisdiction",
            "language",
            "channels",
            "body_text",
            "body_html",
            "is_active",
        ]


class FollowsPermissionsOf:
    """A ModelAdmin whose rights are those on another model (configuration that belongs to it).

    So the roles need no new permissions: who may edit templates may edit disclosures, who
    may change policies may change thresholds, who may see notices may see their e-mail events.
    """

    view_perm = change_perm = delete_perm = ""

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(self.view_perm) or self.has_change_permission(request)

    def has_add_permission(self, request):
        return bool(self.change_perm) and request.user.has_perm(self.change_perm)

    def has_change_permission(self, request, obj=None):
        return bool(self.change_perm) and request.user.has_perm(self.change_perm)

    def has_delete_permission(self, request, obj=None):
        return bool(self.delete_perm) and request.user.has_perm(self.delete_perm)


@admin.register(Disclosure)
class DisclosureAdmin(FollowsPermissionsOf, admin.ModelAdmin):
    """Required disclosures; the most specific active match is added to each message."""

    view_perm, change_perm, delete_perm = (
        "dunning.view_template",
        "dunning.change_template",
        "dunning.delete_template",
    )

    form = DisclosureForm
    list_display = [
        "name",
        "customer_kind",
        "jurisdiction_display",
        "language",
        "channel_list",
        "is_active",
    ]
    list_filter = ["customer_kind", "jurisdiction", "is_active"]
    search_fields = ["name", "body_text"]

    @admin.display(description=_("jurisdiction"), ordering="jurisdiction")
    def jurisdiction_display(self, disclosure):
        return disclosure.jurisdiction or _("any")

    @admin.display(description=_("channels"))
    def channel_list(self, disclosure):
        return ", ".join(disclosure.channels or [])


@admin.register(HighValueThreshold)
class HighValueThresholdAdmin(FollowsPermissionsOf, admin.ModelAdmin):
    """Per-currency approval thresholds: whoever may change policies may change these."""

    view_perm, change_perm, delete_perm = (
        "dunning.view_policy",
        "dunning.change_policy",
        "dunning.change_policy",
    )
    list_display = ["currency", "amount", "updated_at"]
    search_fields = ["currency"]

    def changelist_view(self, request, extra_context=None):
        fallback = settings.DUNNING_HIGH_VALUE_THRESHOLD
        subtitle = _("Currencies without a row use %(amount)s (DUNNING_HIGH_VALUE_THRESHOLD).") % {
            "amount": fallback
        }
        return super().changelist_view(request, {**(extra_context or {}), "subtitle": subtitle})


@admin.register(EmailEvent)
class EmailEventAdmin(FollowsPermissionsOf, admin.ModelAdmin):
    """Bounces, complaints and deliveries reported by the e-mail provider (read-only)."""

    view_perm = "dunning.view_notice"

    list_display = [
        "received_at",
        "kind",
        "is_permanent",
        "email",
        "notice_id",
        "opted_out",
        "reason",
    ]
    list_filter = ["kind", "is_permanent"]
    search_fields = ["email", "=message_id", "=event_id"]
    readonly_fields = [f.name for f in EmailEvent._meta.fields]
    show_facets = admin.ShowFacets.NEVER


# Who may change policies may change the contact rules and the holidays; agents may view them.
POLICY_PERMISSIONS = ("dunning.view_policy", "dunning.change_policy", "dunning.change_policy")


class ContactRuleForm(forms.ModelForm):
    customer_kind = forms.ChoiceField(
        label=_("customer kind"),
        choices=[("", _("Any kind")), *Customer.Kind.choices],
        required=False,
    )
    no_contact_weekdays = forms.TypedMultipleChoiceField(
        label=_("no contact on"),
        choices=[(n, _(name)) for n, name in enumerate(WEEKDAY_NAMES)],
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = ContactRule
        fields = [
            "country",
            "customer_kind",
            "from_hour",
            "until_hour",
            "no_contact_weekdays",
            "observe_public_holidays",
            "max_contacts_per_7_days",
            "max_contacts_per_month",
            "is_active",
            "note",
        ]


@admin.register(ContactRule)
class ContactRuleAdmin(FollowsPermissionsOf, admin.ModelAdmin):
    """Contact hours, days, holidays and caps per country and customer kind."""

    view_perm, change_perm, delete_perm = POLICY_PERMISSIONS
    form = ContactRuleForm
    list_display = [
        "scope",
        "hours",
        "no_contact_days",
        "observe_public_holidays",
        "max_contacts_per_7_days",
        "monthly_cap",
        "is_active",
        "note",
    ]
    list_filter = ["is_active", "customer_kind", "observe_public_holidays"]
    search_fields = ["=country", "note"]

    @admin.display(description=_("applies to"), ordering="country")
    def scope(self, rule):
        return str(rule)

    @admin.display(description=_("contact hours"))
    def hours(self, rule):
        return f"{rule.from_hour:02d}:00 to {rule.until_hour:02d}:00"

    @admin.display(description=_("no contact on"))
    def no_contact_days(self, rule):
        return ", ".join(str(_(WEEKDAY_NAMES[day])) for day in rule.no_contact_weekdays) or "—"

    @admin.display(description=_("monthly cap"), ordering="max_contacts_per_month")
    def monthly_cap(self, rule):
        return rule.max_contacts_per_month or "—"

    def changelist_view(self, request, extra_context=None):
        start, end = settings.DUNNING_CONTACT_HOURS
        days = ", ".join(WEEKDAY_NAMES[day] for day in settings.DUNNING_NO_CONTACT_WEEKDAYS)
        subtitle = _(
            "Each customer follows the most specific active rule: country and kind, then "
            "country, then kind, then any. Without one, the settings apply: "
            "%(start)02d:00 to %(end)02d:00, no contact on %(days)s, %(week)d contacts in 7 "
            "days, %(month)d a month for consumers."
        ) % {
            "start": start,
            "end": end,
            "days": days or "—",
            "week": settings.DUNNING_MAX_CONTACTS_PER_7_DAYS,
            "month": settings.DUNNING_MAX_CONSUMER_CONTACTS_PER_MONTH,
        }
        return super().changelist_view(request, {**(extra_context or {}), "subtitle": subtitle})


class HolidayYearFilter(admin.SimpleListFilter):
    title = _("year")
    parameter_name = "year"

    def lookups(self, request, model_admin):
        years = PublicHoliday.objects.dates("date", "year", order="DESC")
        return [(str(day.year), str(day.year)) for day in years]

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            return queryset.filter(date__year=int(self.value()))
        return queryset


class LoadHolidaysForm(forms.Form):
    country = forms.CharField(
        label=_("Country"), max_length=2, help_text=_("ISO 3166 code: US, GB, DE, FR…")
    )
    year = forms.IntegerField(label=_("Year"), min_value=1950, max_value=2100)


@admin.register(PublicHoliday)
class PublicHolidayAdmin(FollowsPermissionsOf, admin.ModelAdmin):
    """Public holidays per country, added by hand or loaded for a year from `holidays`."""

    view_perm, change_perm, delete_perm = POLICY_PERMISSIONS
    list_display = ["date", "weekday", "country", "name"]
    list_filter = ["country", HolidayYearFilter]
    search_fields = ["name", "=country"]
    ordering = ["country", "date"]
    change_list_template = "admin/dunning/publicholiday/change_list.html"
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description=_("weekday"))
    def weekday(self, holiday):
        return _(WEEKDAY_NAMES[holiday.date.weekday()])

    def get_urls(self):
        return [
            path(
                "load/",
                self.admin_site.admin_view(self.load_view),
                name="dunning_publicholiday_load",
            ),
            *super().get_urls(),
        ]

    def load_view(self, request):
        """Load a country's public holidays for a year; days already there stay as they are."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = LoadHolidaysForm(
            request.POST if request.method == "POST" else None,
            initial={"year": timezone.localdate().year},
        )
        if form.is_valid():
            try:
                loaded = contact_rules.load_public_holidays(**form.cleaned_data)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                country, year = form.cleaned_data["country"].upper(), form.cleaned_data["year"]
                self.message_user(
                    request,
                    _("%(country)s %(year)d: %(added)d holidays added, %(existing)d already there.")
                    % {
                        "country": country,
                        "year": year,
                        "added": loaded.added,
                        "existing": loaded.existing,
                    },
                )
                changelist = reverse("admin:dunning_publicholiday_changelist")
                return HttpResponseRedirect(f"{changelist}?country__exact={country}&year={year}")
        return TemplateResponse(
            request,
            "admin/dunning/publicholiday/load.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Load public holidays"),
                "opts": PublicHoliday._meta,
                "form": form,
            },
        )


# --- Dunning's actions on the customer page and list (see accounts.admin.CustomerAction) ---


class PolicyForm(forms.Form):
    policy = forms.ModelChoiceField(
        label=_("Dunning policy"),
        queryset=Policy.objects.filter(is_active=True, purpose=Policy.Purpose.DUNNING),
        required=False,
        empty_label=_("— the segment's default —"),
    )
    reason = forms.CharField(label=_("Reason"), max_length=200)


def switch_customer_policy(modeladmin, request, customers):
    def perform(customers, data):
        return services.switch_policy(
            customers=customers, policy=data["policy"], reason=data["reason"], by=request.user
        )

    return modeladmin.run_customer_form(
        request, customers, PolicyForm, perform, _("Switch dunning policy"), SWITCH_POLICY
    )


def _set_automation(modeladmin, request, customers, *, is_excluded: bool):
    def perform(customers, data):
        return services.set_automation(
            customers=customers, is_excluded=is_excluded, reason=data["reason"], by=request.user
        )

    title = (
        _("Exclude from automatic dunning") if is_excluded else _("Put back into automatic dunning")
    )
    return modeladmin.run_customer_form(
        request, customers, account_forms.ReasonForm, perform, title, SWITCH_POLICY
    )


SWITCH_POLICY = "dunning.switch_policy"
for customer_action in (
    CustomerAction(
        "policy",
        _("Switch policy"),
        "switch_policy",
        _("Switch dunning policy"),
        SWITCH_POLICY,
        switch_customer_policy,
    ),
    CustomerAction(
        "exclude",
        _("Exclude from automation"),
        "exclude_from_automation",
        _("Exclude from automatic dunning"),
        SWITCH_POLICY,
        functools.partial(_set_automation, is_excluded=True),
        shown=lambda customer: not customer.is_excluded_from_automation,
    ),
    CustomerAction(
        "include",
        _("Back into automation"),
        "include_in_automation",
        _("Put back into automatic dunning"),
        SWITCH_POLICY,
        functools.partial(_set_automation, is_excluded=False),
        shown=lambda customer: customer.is_excluded_from_automation,
    ),
):
    add_customer_action(customer_action)

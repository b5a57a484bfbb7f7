"""The dunning console: policies, templates with preview, disclosures, thresholds, the outbox."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.models import Customer, Invoice

from . import rendering, services
from .models import (
    MESSAGE_CHANNELS,
    Disclosure,
    EmailEvent,
    HighValueThreshold,
    Notice,
    OutboxMessage,
    Policy,
    Step,
    Template,
)
from .sender import SENDABLE


class StepInline(admin.TabularInline):
    model = Step
    extra = 0
    fields = ["offset_days", "name", "channel", "template", "tone", "approval", "is_active"]
    ordering = ["offset_days", "id"]


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "segment", "is_active", "step_count", "customer_count"]
    inlines = [StepInline]

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
        queryset=Customer.objects.all(), widget=forms.NumberInput, label=_("Customer id")
    )
    exact = forms.BooleanField(
        required=False,
        label=_("This template as written"),
        help_text=_("Otherwise: what the sender would send, in the customer's language."),
    )


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
        return rendering.sms_segments(rendering.sms_text(template.body_text, template.language))

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
        form = PreviewForm(request.GET or None)
        rendered, error, used, disclosure = None, None, None, None
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
                "segments": rendering.sms_segments(rendered["body_text"])
                if rendered and template.channel == "sms"
                else None,
            },
        )


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Why?"), max_length=200)


@admin.register(Notice)
class NoticeAdmin(admin.ModelAdmin):
    list_display = [
        "planned_on",
        "customer",
        "step",
        "channel",
        "status",
        "not_before_at",
        "recipient",
        "reason",
        "letter",
    ]
    list_filter = ["status", "channel", "step__policy", "planned_on"]
    list_select_related = ["customer", "step", "step__policy"]
    search_fields = ["customer__name", "recipient", "=provider_message_id"]
    readonly_fields = [f.name for f in Notice._meta.fields]
    actions = ["approve", "reject", "skip", "send_now"]
    show_facets = admin.ShowFacets.NEVER
    change_list_template = "admin/dunning/notice/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_approve_notice_permission(self, request):
        return request.user.has_perm("dunning.approve_notice")

    def has_send_notice_now_permission(self, request):
        return request.user.has_perm("dunning.send_notice_now")

    def _with_reason(self, request, queryset, action, perform, title):
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                done = perform(queryset, by=request.user, reason=form.cleaned_data["reason"])
            except (PermissionDenied, ValidationError) as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(
                    request, _("%(title)s: %(n)d notice(s).") % {"title": title, "n": done}
                )
            return None
        return TemplateResponse(
            request,
            "admin/integrations/action_form.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "form": form,
                "opts": Notice._meta,
                "action": action,
                "selected": list(queryset.values_list("pk", flat=True)),
                "count": queryset.count(),
            },
        )

    @admin.action(description=_("Approve"), permissions=["approve_notice"])
    def approve(self, request, queryset):
        return self._with_reason(request, queryset, "approve", services.approve, _("Approve"))

    @admin.action(description=_("Reject"), permissions=["approve_notice"])
    def reject(self, request, queryset):
        return self._with_reason(request, queryset, "reject", services.reject, _("Reject"))

    @admin.action(description=_("Skip this step"), permissions=["send_notice_now"])
    def skip(self, request, queryset):
        return self._with_reason(request, queryset, "skip", services.skip, _("Skip"))

    @admin.action(description=_("Send now"), permissions=["send_notice_now"])
    def send_now(self, request, queryset):
        return self._with_reason(request, queryset, "send_now", services.send_now, _("Send now"))

    @admin.display(description=_("letter"))
    def letter(self, notice):
        if not notice.document:
            return "—"
        url = reverse("admin:dunning_notice_letter", args=[notice.pk])
        return format_html('<a href="{}">{}</a>', url, _("PDF"))

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
                "tonight/",
                self.admin_site.admin_view(self.tonight_view),
                name="dunning_notice_tonight",
            ),
            *super().get_urls(),
        ]

    def tonight_view(self, request):
        """What will go out: open notices by step, channel and agent, before they are sent."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        pending = Notice.objects.filter(
            Q(status__in=SENDABLE) | Q(status=Notice.Status.AWAITING_APPROVAL)
        )
        rows = (
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
                "rows": rows,
            },
        )


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """Messages kept locally (no SMTP server or Twilio account configured)."""

    list_display = ["created_at", "channel", "recipient", "subject", "message_id"]
    list_filter = ["channel"]
    search_fields = ["recipient", "subject", "=message_id"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]
    show_facets = admin.ShowFacets.NEVER

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


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

"""The dunning console: policies and steps, templates with preview, the outbox and approvals."""

from django import forms
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
from .models import Notice, OutboxMessage, Policy, Step, Template
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
        if template.channel != "sms":
            return "—"
        return rendering.sms_segments(template.body_text)

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
        rendered, error = None, None
        if form.is_valid():
            customer = form.cleaned_data["customer"]
            invoices = list(Invoice.objects.outstanding().filter(customer=customer)[:50])
            contact = customer.contacts.order_by("-is_primary", "id").first()
            context = rendering.notice_context(
                customer=customer, invoices=invoices, contact=contact, on=timezone.localdate()
            )
            try:
                rendered = rendering.render(template, context)
            except rendering.RenderError as exc:
                error = str(exc)
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

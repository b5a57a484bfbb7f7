"""The payment events received from the gateways, for finance to look up (read-only)."""

from django.contrib import admin

from ..intake.admin import ReadOnlyAdmin
from ..models import WebhookEvent


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "provider", "event_type", "event_id", "status", "note"]
    list_filter = ["provider", "status", "event_type"]
    search_fields = ["=event_id"]

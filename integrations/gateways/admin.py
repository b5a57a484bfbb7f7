"""The payment events received from the gateways, for finance to look up (read-only)."""

from django.contrib import admin

from ..intake.admin import ReadOnlyAdmin
from ..models import InboxItem, WebhookEvent
from . import autopay_admin  # noqa: F401  (registers the automatic-payment pages)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "provider", "event_type", "event_id", "status", "note"]
    list_filter = ["provider", "status", "event_type"]
    search_fields = ["=event_id"]


@admin.register(InboxItem)
class InboxItemAdmin(ReadOnlyAdmin):
    """Every webhook and queued bulk request as it came, and whether a worker applied it."""

    list_display = ["received_at", "source", "key", "status", "processed_at", "note"]
    list_filter = ["source", "status"]
    search_fields = ["=key"]

"""The integrations console: each concern registers its own pages (intake, reconciliation)."""

from django.contrib import admin

from . import reconciliation_admin
from .intake import admin as intake_admin
from .intake.admin import ReadOnlyAdmin
from .models import WebhookEvent

# Importing a concern's admin module registers its pages with the admin site.
PAGES = (intake_admin, reconciliation_admin)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "provider", "event_type", "event_id", "status", "note"]
    list_filter = ["provider", "status", "event_type"]
    search_fields = ["=event_id"]

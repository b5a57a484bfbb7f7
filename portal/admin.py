"""The console's view of portal sign-in codes: read-only, for support questions."""

from django.contrib import admin

from .models import AccessCode


@admin.register(AccessCode)
class AccessCodeAdmin(admin.ModelAdmin):
    list_display = ["contact", "created_at", "expires_at", "attempts", "used_at"]
    list_select_related = ["contact", "contact__customer"]
    readonly_fields = ["contact", "expires_at", "attempts", "used_at", "created_at"]
    exclude = ["code_hash"]
    raw_id_fields = ["contact"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

"""The console's "API tokens" page: each user creates (seen once) and revokes their own;
managers (staff.revoke_any_apitoken) see and revoke anyone's. Replaces knox's admin."""

import contextlib
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from knox.models import AuthToken

from staff.models import ApiToken

with contextlib.suppress(NotRegistered):  # knox's page would show everyone's tokens
    admin.site.unregister(AuthToken)


class NewTokenForm(forms.Form):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["days"] = forms.IntegerField(
            label=_("Valid for (days)"),
            min_value=1,
            max_value=settings.API_TOKEN_TTL_DAYS,
            initial=settings.API_TOKEN_TTL_DAYS,
            help_text=_("The token stops working after this many days; revoke it sooner here."),
        )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("token_key", "user", "created", "expiry", "state")
    list_filter = ("user",)
    ordering = ("-created",)
    fields = ("token_key", "user", "created", "expiry")
    readonly_fields = fields
    actions = ["delete_selected"]

    def can_revoke_any(self, request) -> bool:
        return request.user.has_perm("staff.revoke_any_apitoken")

    def get_queryset(self, request):
        tokens = super().get_queryset(request).select_related("user")
        return tokens if self.can_revoke_any(request) else tokens.filter(user=request.user)

    def get_list_filter(self, request):
        return self.list_filter if self.can_revoke_any(request) else ()

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and (
            obj is None or obj.user_id == request.user.pk or self.can_revoke_any(request)
        )

    has_delete_permission = has_view_permission

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("state"))
    def state(self, token):
        return _("expired") if token.is_expired() else _("active")

    def add_view(self, request, form_url="", extra_context=None):
        """A new token for the user asking: shown once, on this page, never again."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = NewTokenForm(request.POST or None)
        token = None
        if request.method == "POST" and form.is_valid():
            instance, token = ApiToken.objects.create(
                user=request.user, expiry=timedelta(days=form.cleaned_data["days"])
            )
            self.log_addition(request, instance, [{"added": {}}])
            form = None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("New API token"),
            "form": form,
            "token": token,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/staff/apitoken/add.html", context)

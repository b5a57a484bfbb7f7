"""Top-level URL map: the admin console, the API, webhooks, the pay page and the health check."""

from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter
from two_factor.urls import urlpatterns as two_factor_urls

from accounts import api as accounts_api
from accounts import list_exports
from collections_mgmt import views
from dunning import api as dunning_api
from integrations import api as integrations_api
from integrations.email_events import webhooks as email_event_webhooks
from integrations.gateways import pay_page
from staff import saved_filters
from staff.urls import sso_urlpatterns

admin.site.site_header = "Collections Management"
admin.site.site_title = "Collections"
admin.site.index_title = "Collections console"

SWAGGER_CDN = "https://cdn.jsdelivr.net"

router = DefaultRouter()
accounts_api.register(router)
integrations_api.register(router)
dunning_api.register(router)

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("healthz/", views.healthz),
    path("favicon.ico", views.favicon, name="favicon"),
    # Before the router, whose invoices/<pk>/ would otherwise take "bulk" for a pk.
    path(
        "api/v1/invoices/bulk/", integrations_api.InvoiceBulkUpsert.as_view(), name="invoice-bulk"
    ),
    path("api/v1/", include(router.urls)),
    path("integrations/", include("integrations.urls")),
    # Same address as ever; served by integrations, which stores what it receives.
    path(
        "dunning/email-events/",
        email_event_webhooks.email_events_webhook,
        name="email-events",
    ),
    path("dunning/", include("dunning.urls")),
    path("pay/<str:token>/", pay_page.pay_page, name="pay-link"),
    # The debtor portal (portal/...) and the customer's own statement page (statement/...),
    # the payment link of messages without a pay link.
    path("", include("portal.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI comes from its CDN (drf-spectacular's default): the CSP allows that host
    # on this page only, and the page's own script is a separate same-site file.
    path(
        "api/docs/",
        csp_update({host: [SWAGGER_CDN] for host in ("script-src", "style-src-elem", "img-src")})(
            SpectacularSwaggerSplitView.as_view(url_name="schema")
        ),
        name="api-docs",
    ),
    # Staff login: the two-factor wizard (the admin's login page leads there), enrolment,
    # recovery codes, passkeys; verification after single sign-on; single sign-on itself.
    path("", include(two_factor_urls)),
    path("", include("staff.urls")),
    *sso_urlpatterns,
    # The customer, contact and payment imports moved from their ledger pages to intake
    # (one pipeline for every kind of row); the old addresses lead there.
    *(
        path(
            f"admin/accounts/{model}/import/",
            RedirectView.as_view(pattern_name="admin:integrations_intakebatch_import_kind"),
            {"kind": kind},
        )
        for model, kind in (
            ("customer", "customers"),
            ("contact", "contacts"),
            ("payment", "payments"),
        )
    ),
    # Tools of every console list, before the admin's own URLs.
    path(
        "admin/export/<slug:app_label>/<slug:model_name>/",
        admin.site.admin_view(list_exports.export_list),
        name="console-list-export",
    ),
    path(
        "admin/saved-filters/",
        admin.site.admin_view(saved_filters.save_filter),
        name="console-saved-filter-save",
    ),
    path(
        "admin/saved-filters/<int:filter_id>/delete/",
        admin.site.admin_view(saved_filters.delete_filter),
        name="console-saved-filter-delete",
    ),
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
]

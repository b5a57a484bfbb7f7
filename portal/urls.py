"""The debtor's side: the portal (portal/...) and the statement page of older messages."""

from django.contrib import admin
from django.urls import include, path

from . import autopay_views, console_views, views

app_name = "portal"
urlpatterns = [
    path("statement/<str:token>/", views.statement_page, name="statement"),
    path("portal/", views.sign_in, name="login"),
    path("portal/code/", views.enter_code, name="code"),
    path("portal/l/<str:token>/", views.open_link, name="link"),
    path("portal/logout/", views.sign_out, name="logout"),
    path("portal/home/", views.home, name="home"),
    path("portal/invoices/", views.invoices, name="invoices"),
    path("portal/invoices/<int:invoice_id>/", views.invoice, name="invoice"),
    path("portal/invoices/<int:invoice_id>/pdf/", views.invoice_pdf, name="invoice_pdf"),
    path("portal/statement/", views.period_statement, name="period_statement"),
    path("portal/pay/", views.pay, name="pay"),
    path("portal/autopay/", autopay_views.autopay_page, name="autopay"),
    path("portal/autopay/cancel/", autopay_views.autopay_cancel, name="autopay_cancel"),
    path("", include("portal.action_urls")),
    # Staff only (the console's login and second factor): a file a debtor attached.
    path(
        "console/portal-files/<int:activity_id>/<int:index>/",
        admin.site.admin_view(console_views.attachment),
        name="attachment",
    ),
]

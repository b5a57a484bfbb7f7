"""Inbound endpoints of the integrations: payment-gateway and messaging webhooks."""

from django.urls import path

from . import webhooks

app_name = "integrations"
urlpatterns: list = [
    path("stripe/webhook/", webhooks.stripe_webhook, name="stripe-webhook"),
    path("payments/webhook/", webhooks.payments_webhook, name="payments-webhook"),
]

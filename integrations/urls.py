"""Inbound endpoints of the integrations: payment-gateway and messaging webhooks."""

from django.urls import path

from . import twilio
from .gateways import webhooks

app_name = "integrations"
urlpatterns: list = [
    path("stripe/webhook/", webhooks.stripe_webhook, name="stripe-webhook"),
    path("payments/webhook/", webhooks.payments_webhook, name="payments-webhook"),
    path("twilio/status/", twilio.status_callback, name="twilio-status"),
    path("twilio/inbound/", twilio.inbound, name="twilio-inbound"),
]

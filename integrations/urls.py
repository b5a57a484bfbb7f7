"""Inbound endpoints of the integrations: payment-gateway and messaging webhooks."""

from django.urls import path

from .gateways import webhooks as gateway_webhooks
from .inbound import webhooks as inbound_webhooks
from .twilio import webhooks as twilio_webhooks

app_name = "integrations"
urlpatterns: list = [
    path("stripe/webhook/", gateway_webhooks.stripe_webhook, name="stripe-webhook"),
    path("payments/webhook/", gateway_webhooks.payments_webhook, name="payments-webhook"),
    path("twilio/status/", twilio_webhooks.status_callback, name="twilio-status"),
    path("twilio/inbound/", twilio_webhooks.inbound, name="twilio-inbound"),
    path("inbound/mailgun/", inbound_webhooks.mailgun, name="inbound-mailgun"),
    path("inbound/postmark/", inbound_webhooks.postmark, name="inbound-postmark"),
]

"""Inbound endpoints of the integrations: payment-gateway and messaging webhooks."""

app_name = "integrations"
urlpatterns: list = []

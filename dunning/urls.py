"""Public endpoints of the dunning engine: unsubscribe links and the e-mail events webhook."""

from django.urls import path

from . import unsubscribe, webhooks

app_name = "dunning"
urlpatterns = [
    path("unsubscribe/<str:token>/", unsubscribe.unsubscribe, name="unsubscribe"),
    path("email-events/", webhooks.email_events_webhook, name="email-events"),
]

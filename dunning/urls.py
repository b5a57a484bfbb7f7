"""Public endpoints of the dunning engine: unsubscribe links.

The e-mail events webhook is served under /dunning/email-events/ by integrations
(integrations/email_events/webhooks.py), which stores and dead-letters what it receives.
"""

from django.urls import path

from . import unsubscribe

app_name = "dunning"
urlpatterns = [
    path("unsubscribe/<str:token>/", unsubscribe.unsubscribe, name="unsubscribe"),
]

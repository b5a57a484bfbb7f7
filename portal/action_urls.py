"""The portal's action pages (portal/action_views.py), included by portal/urls.py."""

from django.urls import path

from . import action_views

urlpatterns = [
    path("promise/", action_views.promise, name="promise"),
    path("dispute/", action_views.dispute, name="dispute"),
    path("plan/", action_views.plan, name="plan"),
    path("preferences/", action_views.preferences, name="preferences"),
    path("message/", action_views.message, name="message"),
]

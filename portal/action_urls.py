"""The portal's action pages (portal/action_views.py), included by portal/urls.py."""

from django.urls import path

from . import action_views

urlpatterns = [
    path("portal/promise/", action_views.promise, name="promise"),
    path("portal/dispute/", action_views.dispute, name="dispute"),
    path("portal/plan/", action_views.plan, name="plan"),
    path("portal/preferences/", action_views.preferences, name="preferences"),
    path("portal/message/", action_views.message, name="message"),
]

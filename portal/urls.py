"""The debtor's side: pages a customer opens from a message, without a login."""

from django.urls import path

from . import views

app_name = "portal"
urlpatterns = [
    path("<str:token>/", views.statement_page, name="statement"),
]

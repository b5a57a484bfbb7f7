"""Staff login pages: verification of a second factor, and single sign-on (when set)."""

from django.urls import path

from staff import views

app_name = "staff"

urlpatterns = [
    path("account/verify/", views.VerifyView.as_view(), name="verify"),
]

# mozilla-django-oidc reverses these names without a namespace.
sso_urlpatterns = [
    path("oidc/authenticate/", views.sso_start, name="oidc_authentication_init"),
    path("oidc/callback/", views.sso_callback, name="oidc_authentication_callback"),
]

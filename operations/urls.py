"""Mounted at the site root: the paths load balancers and scrapers expect, sign-in and sign-out, single sign-on."""

from django.urls import path

from . import health, metrics_views, sso_views, tokens_views

urlpatterns = [
    path("healthz", health.liveness, name="healthz"),
    path("readyz", health.ReadinessView.as_view(), name="readyz"),
    path("metrics", metrics_views.metrics, name="metrics"),
    path("tokens/", tokens_views.token_page, name="tokens"),
    path("tokens/<str:token_id>/revoke/", tokens_views.token_revoke, name="token_revoke"),
    path("accounts/login/", sso_views.PortalLoginView.as_view(), name="login"),
    path("accounts/logout/", sso_views.SignOutView.as_view(), name="logout"),
    # The names mozilla-django-oidc reverses.
    path("oidc/authenticate/", sso_views.SsoStartView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", sso_views.SsoCallbackView.as_view(), name="oidc_authentication_callback"),
]

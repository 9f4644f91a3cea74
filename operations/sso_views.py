"""Sign-in and sign-out pages: password and/or single sign-on, and sign-out that also ends the provider's session.

- The sign-in page offers "Sign in with ..." when OIDC is configured, and the password form unless
  PASSWORD_LOGIN_ENABLED is off; then a posted password is refused here, and no backend would accept it anywhere
  else either (settings swap ModelBackend for `PermissionsOnlyBackend`).
- The OIDC start and callback views are mozilla-django-oidc's, answering 404 while single sign-on is not configured.
- Sign-out ends the portal session and, for a session that single sign-on started, sends the browser on to the
  provider's end_session_endpoint (OIDC RP-Initiated Logout 1.0) with the ID token as a hint and the sign-in page as
  where to come back to; a provider without one (OIDC_OP_LOGOUT_ENDPOINT empty) keeps its session.
"""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from mozilla_django_oidc import views as oidc_views

from .sso_backend import sso_enabled

ID_TOKEN_SESSION_KEY = "oidc_id_token"  # where mozilla-django-oidc keeps it with OIDC_STORE_ID_TOKEN


class PortalLoginView(auth_views.LoginView):
    template_name = "operations/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        if not settings.PASSWORD_LOGIN_ENABLED:
            context = self.get_context_data(password_refused=True)
            return self.render_to_response(context, status=403)
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return super().get_context_data(**kwargs) | {
            "sso_enabled": sso_enabled(),
            "sso_name": settings.OIDC_PROVIDER_NAME,
            "sso_failed": self.request.GET.get("sso") == "failed",
            "password_login_enabled": settings.PASSWORD_LOGIN_ENABLED,
        }


class _OnlyWhenConfigured:
    def dispatch(self, request, *args, **kwargs):
        if not sso_enabled():
            raise Http404("Single sign-on is not configured.")
        return super().dispatch(request, *args, **kwargs)


class SsoStartView(_OnlyWhenConfigured, oidc_views.OIDCAuthenticationRequestView):
    pass


class SsoCallbackView(_OnlyWhenConfigured, oidc_views.OIDCAuthenticationCallbackView):
    pass


class SignOutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        provider_url = provider_logout_url(request)
        response = super().post(request, *args, **kwargs)
        return HttpResponseRedirect(provider_url) if provider_url else response


def provider_logout_url(request) -> str | None:
    """The provider's end-session URL for this session, or None (not an SSO session, or no such endpoint)."""
    id_token = request.session.get(ID_TOKEN_SESSION_KEY)
    endpoint = settings.OIDC_OP_LOGOUT_ENDPOINT
    if not (id_token and endpoint and sso_enabled()):
        return None
    query = urlencode(
        {
            "id_token_hint": id_token,
            "client_id": settings.OIDC_RP_CLIENT_ID,
            "post_logout_redirect_uri": request.build_absolute_uri(reverse("login")),
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

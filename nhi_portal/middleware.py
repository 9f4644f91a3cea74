"""Request and response checks of the project's own.

Refuse NUL characters in query strings and form fields up front: PostgreSQL cannot store them, and no
legitimate input contains them, so they get a clear 400 instead of a database error deep in a view."""

from functools import cache

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpResponseBadRequest


class RejectNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            "\x00" in request.path
            or _has_nul(request.GET)
            or (request.method == "POST" and request.content_type in _FORM_TYPES and _has_nul(request.POST))
        ):
            return HttpResponseBadRequest("NUL characters are not allowed in requests.", content_type="text/plain")
        return self.get_response(request)


# Multipart bodies are left alone: reading them here would consume the stream before the view sees it.
_FORM_TYPES = ("application/x-www-form-urlencoded",)


def _has_nul(query) -> bool:
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in query.lists())


class SitePolicyCSPMiddleware(CSPMiddleware):
    """django-csp builds the header from settings on every response (about 60 us, a tenth of the floor of a DRF
    request). Every response that no view adjusts and that used no nonce carries the same site policy, so that one is
    built once; anything else (the API docs' relaxed policy, a nonce, an exemption, debug pages) goes the library's
    way."""

    _ADJUSTED = ("_csp_config", "_csp_update", "_csp_replace", "_csp_exempt")

    def process_response(self, request, response):
        adjusted = any(hasattr(response, name) or hasattr(response, f"{name}_ro") for name in self._ADJUSTED)
        if settings.DEBUG or adjusted or getattr(request, "_csp_nonce", None) is not None:
            return super().process_response(request, response)
        policy, report_only = _site_policy()
        if policy is None:
            return super().process_response(request, response)
        if policy and HEADER not in response:
            response[HEADER] = policy
        if report_only and HEADER_REPORT_ONLY not in response:
            response[HEADER_REPORT_ONLY] = report_only
        # As the library does once the header is written: a nonce asked for now could no longer reach it.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response


@cache
def _site_policy() -> tuple[str | None, str]:
    """The site's policy and report-only policy; (None, "") when URL prefixes are excluded (left to the library)."""
    for name in ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY"):
        if (getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES"):
            return None, ""
    return build_policy(), build_policy(report_only=True)


@receiver(setting_changed)
def _policy_changed(*, setting, **kwargs):
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _site_policy.cache_clear()

"""Refuse NUL characters in query strings and form fields up front: PostgreSQL cannot store them, and no
legitimate input contains them, so they get a clear 400 instead of a database error deep in a view."""

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

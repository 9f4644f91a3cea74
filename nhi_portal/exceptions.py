"""One place that turns domain errors into HTTP answers, so no bad input becomes a 500."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler


class PortalError(Exception):
    """Base for domain errors raised by services; carries the HTTP status it maps to."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, field: str = "detail"):
        super().__init__(message)
        self.message = message
        self.field = field


class Conflict(PortalError):
    """The object is not in a state that allows the change (e.g. a request that is no longer pending)."""

    status_code = status.HTTP_409_CONFLICT


def portal_exception_handler(exc, context):
    if isinstance(exc, PortalError):
        return Response({exc.field: [exc.message]}, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError(detail=exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages})
    if isinstance(exc, ProtectedError | RestrictedError):
        message = "Other records still refer to this one (for example recorded activity); retire it instead."
        return Response({"detail": [message]}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoPermissionDenied):
        return Response({"detail": str(exc) or "Permission denied."}, status=status.HTTP_403_FORBIDDEN)
    return exception_handler(exc, context)


@csrf_exempt  # nothing to protect, and a POST to a wrong path is a 404, not the CSRF failure page
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """A path under the API that no route matches (`/api/v1/tools/1.5/`): DRF's 404 shape, not the site's HTML page."""
    return JsonResponse({"detail": "Not found."}, status=404)

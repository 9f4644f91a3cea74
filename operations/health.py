"""/healthz (liveness) and /readyz (readiness), for load balancers and orchestrators.

Liveness answers 200 as long as the process serves requests: it reads nothing, so a database outage does not get
every web process restarted. Readiness runs the checks in `checks.py` and answers 200 when all pass, 503 otherwise.
Anyone gets the status; the security team, the metrics token and the allowed networks (see `access.py`) also get
each check's result and what it measured.
"""

import asyncio

from asgiref.sync import sync_to_async
from django.http import JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_safe
from health_check.views import HealthCheckView

from .access import Access, operations_access
from .checks import READINESS_CHECKS


@require_safe
def liveness(request):
    response = JsonResponse({"status": "ok"})
    add_never_cache_headers(response)
    return response


class ReadinessView(HealthCheckView):
    """django-health-check's view runs the checks (concurrently, each with its timeout); the answer is ours: a
    status for everyone and details only for those allowed, instead of the library's page that shows every check's
    error to anyone."""

    checks = READINESS_CHECKS
    http_method_names = ["get", "head", "options"]

    async def get(self, request, *args, **kwargs):
        access = await sync_to_async(operations_access)(request)
        with self.get_executor() as executor:
            results = await asyncio.gather(*(check.get_result(executor) for check in self.get_checks()))
        ready = not any(result.error for result in results)
        body = {"status": "ready" if ready else "not ready"}
        if access is Access.ALLOWED:
            body["checks"] = {
                result.check.name: {
                    "ok": result.error is None,
                    "detail": "ok" if result.error is None else result.error.message,
                    "seconds": round(result.time_taken, 4),
                    **result.check.observed,
                }
                for result in results
            }
        response = JsonResponse(body, status=200 if ready else 503)
        add_never_cache_headers(response)
        return response

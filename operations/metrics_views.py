"""/metrics: Prometheus text exposition, for the metrics token, the allowed networks and the security team.

Single process (`make run`, tests): the process's own registry, which includes prometheus-client's process and
Python collectors. Several processes (gunicorn with PROMETHEUS_MULTIPROC_DIR set): every process's values summed
from the directory, as prometheus-client's multiprocess mode prescribes. Either way the database-derived gauges
(`collectors.py`) are added at scrape time.
"""

import os

from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

from .access import Access, operations_access
from .collectors import DatabaseCollector

_REFUSALS = {
    Access.ANONYMOUS: (401, "Authentication credentials were not provided."),
    Access.BAD_CREDENTIALS: (401, "Invalid token."),
    Access.FORBIDDEN: (403, "You do not have permission to read the metrics."),
    Access.THROTTLED: (429, "Too many failed token authentications from this address."),
}


class _ProcessRegistry:
    """This process's registry as one collector of the scrape's registry."""

    def collect(self):
        return REGISTRY.collect()


def scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ProcessRegistry())
    registry.register(DatabaseCollector())
    return registry


@require_GET
def metrics(request):
    access = operations_access(request)
    if access is not Access.ALLOWED:
        status, detail = _REFUSALS[access]
        response = JsonResponse({"detail": detail}, status=status)
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    response = HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_PLAIN_0_0_4)
    response["Cache-Control"] = "no-store"
    return response

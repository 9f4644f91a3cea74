from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

api_v1 = [
    # Approvals first: its first route is /authorize/, asked before every AI action, and Django tries routes in
    # order (measured: 0.3 ms per call spent failing to match the inventory routers first).
    path("", include("approvals.api.urls")),
    path("", include("operations.api_urls")),  # API tokens
    path("", include("inventory.api.urls")),
]

# The API docs pages, and only they, style themselves with <style> elements (Redoc writes its own at run time), draw
# icons from data: URLs and run Redoc's search in a Worker made from a blob: URL. Scripts stay 'self' even here: the
# split Swagger view serves its start-up script from its own URL instead of inline.
docs_policy = csp_update({"style-src": [UNSAFE_INLINE], "img-src": [SELF, "data:"], "worker-src": [SELF, "blob:"]})

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", docs_policy(SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
    path("api/redoc/", docs_policy(SpectacularRedocView.as_view(url_name="api-schema")), name="api-redoc"),
    # Sign-in (password and single sign-on), sign-out, /healthz, /readyz, /metrics.
    path("", include("operations.urls")),
    # The role home pages at "/": before the apps, whose pages they link to (home/ reads both; neither imports it).
    path("", include("home.urls")),
    path("", include("approvals.urls")),
    path("", include("inventory.urls")),
]

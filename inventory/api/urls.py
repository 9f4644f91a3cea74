from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from inventory.api import me, views
from inventory.audit import api as audit
from inventory.detection import api as findings
from inventory.imports import api as imports
from inventory.imports import review_api as review  # issue 14: suggestions, Unassigned queue
from inventory.posture import api as posture
from inventory.usage import api as usage
from nhi_portal.exceptions import api_not_found

router = DefaultRouter()
router.register("tools", views.ToolViewSet, basename="tool")
router.register("identities", views.IdentityViewSet, basename="identity")
router.register("credentials", views.CredentialViewSet, basename="credential")
router.register("scopes", views.ScopeViewSet, basename="scope")
router.register("audit", audit.AuditEntryViewSet, basename="audit")
router.register("findings", findings.FindingViewSet, basename="finding")
router.register("scans", findings.ScanViewSet, basename="scan")
router.register("alerts/deliveries", findings.AlertDeliveryViewSet, basename="alert-delivery")  # issue 18
router.register("frameworks", posture.FrameworkViewSet, basename="framework")

urlpatterns = [
    path("import/", imports.ImportView.as_view(), name="import"),
    path("sources/", imports.SourceListView.as_view(), name="sources"),
    path("sources/runs/<int:pk>/", imports.SourceRunView.as_view(), name="source-run"),
    path("sources/suggestions/", review.SuggestionListView.as_view(), name="source-suggestions"),
    path("sources/suggestions/<int:pk>/accept/", review.SuggestionAcceptView.as_view(), name="suggestion-accept"),
    path("sources/suggestions/<int:pk>/dismiss/", review.SuggestionDismissView.as_view(), name="suggestion-dismiss"),
    path("sources/unassigned/", review.UnassignedListView.as_view(), name="source-unassigned"),
    path("sources/unassigned/assign/", review.UnassignedAssignView.as_view(), name="unassigned-assign"),
    path("sources/<str:kind>/import/", imports.SourceImportView.as_view(), name="source-import"),
    path("audit/verify/", audit.VerifyAuditView.as_view(), name="audit-verify"),
    path("events/export/", audit.EventExportView.as_view(), name="events-export"),  # issue 17: SIEM export
    path("events/", usage.EventIngestView.as_view(), name="events"),
    path("me/", me.MeView.as_view(), name="me"),
    path("tools/<int:pk>/posture/", posture.ToolPostureView.as_view(), name="tool-posture"),
    *router.urls,
    # Last, under /api/v1/: a path no route takes answers JSON. Only paths ending in a slash, so that a missing slash
    # still gets Django's redirect to the route it meant.
    re_path(r"^[\s\S]*/$", api_not_found),
]

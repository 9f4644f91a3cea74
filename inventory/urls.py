from django.urls import path
from django.views.generic import RedirectView

from inventory import autocomplete, views
from inventory.audit import views as audit
from inventory.detection import filter_choices
from inventory.detection import response_views as response
from inventory.detection import views as detection
from inventory.imports import views as sources  # issue 14: the Sources page
from inventory.posture import views as posture

app_name = "inventory"

urlpatterns = [
    # "/" is the role home page (home/, mounted before this app); the old name still resolves there for links to it.
    path("", RedirectView.as_view(pattern_name="home:home"), name="dashboard"),
    path("tools/", views.tool_list, name="tool_list"),
    path("autocomplete/users/", autocomplete.users, name="autocomplete_users"),  # issue 17: form pickers
    path("autocomplete/identities/", autocomplete.identities, name="autocomplete_identities"),
    path("tools/export.csv", views.tool_export, name="tool_export"),
    path("tools/new/", views.tool_create, name="tool_create"),
    path("tools/<int:pk>/", views.tool_detail, name="tool_detail"),
    path("tools/<int:pk>/edit/", views.tool_edit, name="tool_edit"),
    path("tools/<int:pk>/decisions/", views.tool_decisions, name="tool_decisions"),
    path("identities/", views.identity_list, name="identity_list"),
    path("identities/export.csv", views.identity_export, name="identity_export"),
    path("identities/new/", views.identity_create, name="identity_create"),
    path("identities/<int:pk>/", views.identity_detail, name="identity_detail"),
    path("identities/<int:pk>/edit/", views.identity_edit, name="identity_edit"),
    path("identities/<int:pk>/credentials/", views.credential_add, name="credential_add"),
    path("tools/<int:pk>/posture/", posture.tool_posture, name="tool_posture"),
    path("tools/<int:pk>/attest/", posture.attest, name="attest"),
    path("compliance/", posture.compliance_overview, name="compliance"),
    path("compliance/controls/<int:pk>/", posture.control_detail, name="control_detail"),
    path("compliance/export.csv", posture.compliance_export, name="compliance_export"),
    path("compliance/report/", posture.compliance_report, name="compliance_report"),
    path("findings/", detection.finding_list, name="finding_list"),
    path("findings/bulk/", detection.finding_bulk, name="finding_bulk"),
    # issue 15: the list's tool and owner filters pick by typing
    path("findings/filters/tools/", filter_choices.tools, name="finding_filter_tools"),
    path("findings/filters/owners/", filter_choices.owners, name="finding_filter_owners"),
    path("findings/<int:pk>/", detection.finding_detail, name="finding_detail"),
    path("findings/<int:pk>/contain/", response.finding_contain, name="finding_contain"),  # issue 18
    path("findings/<int:pk>/release/", response.finding_release, name="finding_release"),
    path("findings/alerts/", response.alert_deliveries, name="alert_deliveries"),
    path("scans/", detection.scan_start, name="scan_start"),
    path("scans/<int:pk>/progress/", detection.scan_progress, name="scan_progress"),
    path("sources/", sources.sources, name="sources"),
    path("sources/preview/", sources.source_preview, name="source_preview"),
    path("sources/apply/", sources.source_apply, name="source_apply"),
    path("sources/suggestions/<int:pk>/accept/", sources.suggestion_accept_view, name="suggestion_accept"),
    path("sources/suggestions/<int:pk>/dismiss/", sources.suggestion_dismiss_view, name="suggestion_dismiss"),
    path("sources/unassigned/", sources.unassigned, name="unassigned"),
    path("audit/", audit.access_events, name="audit_events"),
    path("audit/changes/", audit.audit_changes, name="audit_changes"),
    path("audit/verify/", audit.audit_verify, name="audit_verify"),
]

from django.urls import path

from inventory import views
from inventory.audit import views as audit
from inventory.detection import views as detection
from inventory.posture import views as posture

app_name = "inventory"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("tools/", views.tool_list, name="tool_list"),
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
    path("findings/<int:pk>/", detection.finding_detail, name="finding_detail"),
    path("scans/", detection.scan_start, name="scan_start"),
    path("scans/<int:pk>/progress/", detection.scan_progress, name="scan_progress"),
    path("audit/", audit.access_events, name="audit_events"),
    path("audit/changes/", audit.audit_changes, name="audit_changes"),
    path("audit/verify/", audit.audit_verify, name="audit_verify"),
]

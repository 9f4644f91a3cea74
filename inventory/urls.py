from django.urls import path

from . import compliance_views, finding_views, views

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
    path("tools/<int:pk>/posture/", compliance_views.tool_posture, name="tool_posture"),
    path("tools/<int:pk>/attest/", compliance_views.attest, name="attest"),
    path("compliance/", compliance_views.compliance_overview, name="compliance"),
    path("compliance/controls/<int:pk>/", compliance_views.control_detail, name="control_detail"),
    path("compliance/export.csv", compliance_views.compliance_export, name="compliance_export"),
    path("compliance/report/", compliance_views.compliance_report, name="compliance_report"),
    path("findings/", finding_views.finding_list, name="finding_list"),
    path("findings/bulk/", finding_views.finding_bulk, name="finding_bulk"),
    path("findings/<int:pk>/", finding_views.finding_detail, name="finding_detail"),
    path("scans/", finding_views.scan_start, name="scan_start"),
    path("scans/<int:pk>/progress/", finding_views.scan_progress, name="scan_progress"),
]

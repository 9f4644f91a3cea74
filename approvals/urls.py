from django.urls import path

from approvals import views

app_name = "approvals"

urlpatterns = [
    path("requests/", views.request_list, name="request_list"),
    path("requests/new/", views.request_create, name="request_create"),
    path("requests/new/identities/", views.request_identity_options, name="request_identity_options"),
    path("requests/<int:pk>/", views.request_detail, name="request_detail"),
    path("requests/<int:pk>/approve/", views.request_decide, {"kind": "approve"}, name="request_approve"),
    path("requests/<int:pk>/deny/", views.request_decide, {"kind": "deny"}, name="request_deny"),
    path("requests/<int:pk>/cancel/", views.request_cancel, name="request_cancel"),
    path("requests/<int:pk>/renew/", views.request_renew, name="request_renew"),
    path("review/", views.review_queue, name="review_queue"),
    path("grants/", views.grant_list, name="grant_list"),
    path("grants/<int:pk>/revoke/", views.grant_revoke, name="grant_revoke"),
    path("policy/", views.policy_page, name="policy"),
    path("policy/settings/", views.policy_update, name="policy_update"),
]

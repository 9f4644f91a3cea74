"""Mounted under /api/v1/ (nhi_portal/urls.py), before the inventory's routes end in their catch-all 404."""

from django.urls import path

from . import tokens_api

urlpatterns = [
    path("tokens/", tokens_api.TokenListView.as_view(), name="token-list"),
    path("tokens/<str:token_id>/revoke/", tokens_api.TokenRevokeView.as_view(), name="token-revoke"),
]

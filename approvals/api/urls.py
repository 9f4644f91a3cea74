from django.urls import path
from rest_framework.routers import SimpleRouter

from . import authorize, views

router = SimpleRouter()
router.register("requests", views.AccessRequestViewSet, basename="request")
router.register("grants", views.GrantViewSet, basename="grant")

urlpatterns = [
    path("authorize/", authorize.AuthorizeView.as_view(), name="authorize"),
    path("authorize/batch/", authorize.AuthorizeBatchView.as_view(), name="authorize-batch"),
    *router.urls,
]

from django.urls import path
from rest_framework.routers import DefaultRouter

from . import imports, views

router = DefaultRouter()
router.register("tools", views.ToolViewSet, basename="tool")
router.register("identities", views.IdentityViewSet, basename="identity")
router.register("credentials", views.CredentialViewSet, basename="credential")
router.register("scopes", views.ScopeViewSet, basename="scope")

urlpatterns = [path("import/", imports.ImportView.as_view(), name="import"), *router.urls]

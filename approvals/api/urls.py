from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("requests", views.AccessRequestViewSet, basename="request")
router.register("grants", views.GrantViewSet, basename="grant")

urlpatterns = router.urls

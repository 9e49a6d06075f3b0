"""/api/v1/ URLs of scoring's endpoints; config/urls.py mounts them beside crm's."""

from rest_framework.routers import SimpleRouter

from scoring.api.views import HandoffViewSet

router = SimpleRouter()
router.register("handoffs", HandoffViewSet, basename="handoff")

app_name = "scoring_api"
urlpatterns = router.urls

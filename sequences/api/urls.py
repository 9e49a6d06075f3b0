"""/api/v1/ URLs of sequences' endpoints; config/urls.py mounts them beside crm's."""

from rest_framework.routers import SimpleRouter

from sequences.api.views import SequenceViewSet

router = SimpleRouter()
router.register("sequences", SequenceViewSet, basename="sequence")

app_name = "sequences_api"
urlpatterns = router.urls

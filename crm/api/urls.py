"""/api/v1/ URLs of crm's endpoints. config/urls.py mounts them with the other apps'."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from crm.api import schema  # noqa: F401  (registers the API key scheme with drf-spectacular)
from crm.api.privacy import ContactExportView
from crm.api.segments import SegmentListView, SegmentMembersView
from crm.api.views import CompanyViewSet, ContactViewSet, DealViewSet, EventsView, IdentifyView

router = SimpleRouter()
router.register("contacts", ContactViewSet, basename="contact")
router.register("companies", CompanyViewSet, basename="company")
router.register("deals", DealViewSet, basename="deal")

app_name = "crm_api"
urlpatterns = [
    path("events/", EventsView.as_view(), name="events"),
    path("identify/", IdentifyView.as_view(), name="identify"),
    path("contacts/<int:pk>/export/", ContactExportView.as_view(), name="contact-export"),
    *router.urls,
    path("segments/", SegmentListView.as_view(), name="segment-list"),
    path("segments/<slug:key>/members/", SegmentMembersView.as_view(), name="segment-members"),
]

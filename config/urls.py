"""Top-level URLs: the admin, the API, the tracking snippet, ESP webhooks."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from crm.api.views import ApiNotFoundView, tracking_snippet
from sequences.esp.sns import TopicCheckedSesTrackingView

admin.site.site_header = "Nextstep"
admin.site.site_title = "Nextstep"
admin.site.index_title = "Customers, signals and sequences"

#: Every app's API under one version prefix; each app owns its own urls module.
api_v1 = [
    path("", include("crm.api.urls")),
    path("", include("scoring.api.urls")),
    path("", include("sequences.api.urls")),
    path("schema/", SpectacularAPIView.as_view(authentication_classes=[]), name="api-schema"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(authentication_classes=[], url_name="api-schema"),
        name="api-docs",
    ),
    # Last: any other path under /api/v1/ is a JSON 404 in the API's error shape.
    re_path(r"", ApiNotFoundView.as_view(), name="api-not-found"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("t/nextstep.js", tracking_snippet, name="tracking-snippet"),
    # Ahead of anymail's URLs: the same SES path, plus the expected-topic check.
    path(
        "anymail/amazon_ses/tracking/",
        TopicCheckedSesTrackingView.as_view(),
        name="amazon_ses_topic_checked_tracking",
    ),
    path("anymail/", include("anymail.urls")),
    path("", include("crm.public.urls")),
]

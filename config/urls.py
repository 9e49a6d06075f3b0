"""Top-level URLs: the admin, the API, the tracking snippet, ESP webhooks."""

from django.conf import settings
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularSwaggerView

from crm.api.schema_view import CachedSchemaView
from crm.api.views import ApiNotFoundView, tracking_snippet
from sequences.webhooks import esp_tracking_urls


class FaviconRedirect(RedirectView):
    """/favicon.ico → the static icon, its hashed name looked up per request.

    Looking it up at import would need the collectstatic manifest before any command
    (`check --deploy` included) could load the URLs.
    """

    permanent = True

    def get_redirect_url(self, *args, **kwargs):
        return static("crm/favicon.ico")


admin.site.site_header = "Nextstep"
admin.site.site_title = "Nextstep"
admin.site.index_title = "Customers, signals and sequences"

#: Every app's API under one version prefix; each app owns its own urls module.
api_v1 = [
    path("", include("crm.api.urls")),
    path("", include("scoring.api.urls")),
    path("", include("sequences.api.urls")),
    path("", include("sequences.reports.api")),
    path("schema/", CachedSchemaView.as_view(authentication_classes=[]), name="api-schema"),
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
    # Browsers ask every site for /favicon.ico; answer instead of logging a 404 per page.
    path("favicon.ico", FaviconRedirect.as_view()),
    # Only the configured ESP's tracking webhook (ESP_WEBHOOKS); no inbound mail.
    path("anymail/", include(esp_tracking_urls(settings.ESP_WEBHOOKS))),
    path("", include("crm.public.urls")),
]

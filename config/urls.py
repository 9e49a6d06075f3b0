"""Top-level URLs: the admin, the API, ESP webhooks."""

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Nextstep"
admin.site.site_title = "Nextstep"
admin.site.index_title = "Customers, signals and sequences"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("anymail/", include("anymail.urls")),
]

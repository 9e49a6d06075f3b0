"""A URLconf with scoring's API mounted as config/urls.py mounts it, for the API tests."""

from django.urls import include, path

urlpatterns = [path("api/v1/", include("scoring.api.urls"))]

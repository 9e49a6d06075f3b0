"""URLs of the public pages; config/urls.py mounts them at the site root."""

from django.urls import path

from crm.public import views

app_name = "public"
urlpatterns = [
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("preferences/<str:token>/", views.preferences, name="preferences"),
    path("subscribe/", views.subscribe, name="subscribe"),
    path("subscribe/confirm/<str:token>/", views.subscribe_confirm, name="subscribe-confirm"),
]

"""Public consent links: /u/<token>/ (unsubscribe, RFC 8058 one-click) and /c/<token>/ (double opt-in)."""

from django.urls import path

from . import views

urlpatterns = [
    path("u/<str:token>/", views.unsubscribe, name="consent-unsubscribe"),
    path("c/<str:token>/", views.confirm, name="consent-confirm"),
]

"""Public consent links: /u/<token>/ (unsubscribe, RFC 8058 one-click), /c/<token>/ (double opt-in), and the
signed bounce/complaint receiver /hooks/bounces/."""

from django.urls import path

from ..messaging import webhooks
from . import bounces, views

urlpatterns = [
    path("u/<str:token>/", views.unsubscribe, name="consent-unsubscribe"),
    path("c/<str:token>/", views.confirm, name="consent-confirm"),
    path("hooks/bounces/", bounces.bounce_webhook, name="consent-bounce-webhook"),
    path("hooks/anymail/<str:esp>/tracking/", webhooks.anymail_tracking, name="messaging-anymail-tracking"),
]

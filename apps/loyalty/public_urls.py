"""The customer cockpit (reached by signed link), mounted at /me/."""

from django.urls import path

from . import inbox, views

urlpatterns = [
    path("", views.cockpit_link_request, name="loyalty-cockpit-link-request"),
    path("<str:token>/", views.cockpit, name="loyalty-cockpit"),
    path("<str:token>/redeem/<int:reward_id>/", views.cockpit_redeem, name="loyalty-cockpit-redeem"),
    path("<str:token>/referral-name/", views.cockpit_referral_name, name="loyalty-cockpit-referral-name"),
    path(
        "<str:token>/messages/<int:delivery_id>/read/", inbox.cockpit_message_read, name="loyalty-cockpit-message-read"
    ),
]

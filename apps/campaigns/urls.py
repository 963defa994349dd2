"""Non-API pages of this app (admin custom pages), mounted at /admin/campaigns/."""

from django.urls import path

from . import views
from .fraud import views as fraud_views

urlpatterns = [
    path("promotions/simulator/", views.simulator, name="campaigns-simulator"),
    path("promotions/kill-switch/", views.kill_switch, name="campaigns-kill-switch"),
    path("promotions/kill-switch/state/", views.kill_switch_state, name="campaigns-kill-switch-state"),
    path("promotions/redemptions/", views.redemptions_log, name="campaigns-redemptions"),
    path("segments/preview/", views.segment_preview, name="campaigns-segment-preview"),
    path("fraud/review/", fraud_views.review_queue, name="campaigns-fraud-review"),
    path(
        "fraud/review/<int:pk>/<str:decision>/",
        fraud_views.review_decide,
        name="campaigns-fraud-decide",
    ),
    path("promotions/campaigns/<int:campaign_id>/codes/", views.campaign_codes, name="campaigns-campaign-codes"),
]

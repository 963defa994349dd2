"""Non-API pages of this app (admin custom pages), mounted at /admin/campaigns/."""

from django.urls import path

from . import views
from .fraud import views as fraud_views
from .landing import views as landing_views

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
    path("landing/", landing_views.page_list, name="landing-list"),
    path("landing/new/", landing_views.page_new, name="landing-new"),
    path("landing/referral/", landing_views.referral_page_install, name="landing-referral-install"),
    path("landing/<int:pk>/", landing_views.page_edit, name="landing-edit"),
    path("landing/<int:pk>/unpublish/", landing_views.page_unpublish, name="landing-unpublish"),
    path("landing/<int:pk>/preview/", landing_views.page_preview, name="landing-preview"),
]

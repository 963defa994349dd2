"""Non-API pages of this app (admin custom pages), mounted at /admin/campaigns/."""

from django.urls import path

from . import views

urlpatterns = [
    path("promotions/simulator/", views.simulator, name="campaigns-simulator"),
    path("promotions/kill-switch/", views.kill_switch, name="campaigns-kill-switch"),
    path("promotions/kill-switch/state/", views.kill_switch_state, name="campaigns-kill-switch-state"),
    path("promotions/redemptions/", views.redemptions_log, name="campaigns-redemptions"),
    path("segments/preview/", views.segment_preview, name="campaigns-segment-preview"),
]

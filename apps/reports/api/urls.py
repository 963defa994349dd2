from django.urls import path

from . import views

urlpatterns = [
    path("reports/dashboard/", views.DashboardView.as_view(), name="reports-api-dashboard"),
    path("reports/loyalty/", views.LoyaltyReportView.as_view(), name="reports-api-loyalty"),
    path("reports/campaigns/", views.CampaignsReportView.as_view(), name="reports-api-campaigns"),
    path("reports/cohorts/", views.CohortsReportView.as_view(), name="reports-api-cohorts"),
    path("reports/workflows/", views.WorkflowsReportView.as_view(), name="reports-api-workflows"),
]

"""Marketer pages of the reports, mounted at /admin/reports/."""

from django.urls import path

from . import views

app_name = "reports"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("loyalty/", views.loyalty, name="loyalty"),
    path("campaigns/", views.campaigns, name="campaigns"),
    path("cohorts/", views.cohorts, name="cohorts"),
    path("workflows/", views.workflows, name="workflows"),
]

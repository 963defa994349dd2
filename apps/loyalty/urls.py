"""Non-API pages of this app (admin custom pages), mounted at /admin/loyalty/."""

from django.urls import path

from . import views

urlpatterns = [
    path("scan/", views.staff_scan, name="loyalty-staff-scan"),
]

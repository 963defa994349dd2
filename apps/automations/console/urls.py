"""The console's cross-app pages, mounted at /admin/console/ (before the admin's catch-all)."""

from django.urls import path

from . import customer, references

app_name = "console"

urlpatterns = [
    path("customers/<int:pk>/", customer.customer_360, name="customer"),
    path("ref/", references.reference_open, name="reference"),
]

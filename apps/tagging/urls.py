"""Non-API pages of this app (admin custom pages), mounted at /admin/tagging/."""

from django.urls import path

from .imports import views as import_views

urlpatterns = [
    path("imports/", import_views.import_list, name="tagging-import"),
    path("imports/<int:pk>/", import_views.import_detail, name="tagging-import-detail"),
    path("imports/<int:pk>/status/", import_views.import_status, name="tagging-import-status"),
]

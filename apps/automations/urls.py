"""
Marketer pages of the automations app inside the admin (mounted at /admin/automations/ before the admin's
own URLs). Every path starts with a prefix that is not a model name, so /admin/automations/workflow/...
stays the admin's.
"""

from django.urls import path

from apps.automations.builder import gallery, runs, views

app_name = "automations"

urlpatterns = [
    path("builder/", views.workflow_list, name="workflow_list"),
    path("builder/new/", views.builder_new, name="builder_new"),
    path("builder/new/save/", views.builder_save, name="builder_save_new"),
    path("builder/test/", views.builder_test, name="builder_test"),
    path("builder/customers/", views.customer_search, name="customer_search"),
    path("builder/subjects/", views.test_subjects, name="test_subjects"),
    path("builder/<int:pk>/", views.builder_edit, name="builder"),
    path("builder/<int:pk>/save/", views.builder_save, name="builder_save"),
    path("builder/<int:pk>/activate/", views.builder_activate, name="builder_activate"),
    path("builder/<int:pk>/pause/", views.builder_pause, name="builder_pause"),
    path("builder/<int:pk>/state/", views.builder_state, name="builder_state"),
    path("builder/<int:pk>/run/", views.builder_run_now, name="builder_run_now"),
    path("builder/<int:pk>/toggle/", views.workflow_toggle, name="workflow_toggle"),
    path("builder/<int:pk>/runs/", runs.run_list, name="workflow_runs"),
    path("builder/<int:pk>/versions/", views.version_list, name="versions"),
    path("builder/<int:pk>/versions/<int:number>/", views.version_detail, name="version"),
    path("builder/<int:pk>/versions/<int:number>/restore/", views.version_restore, name="version_restore"),
    path("gallery/", gallery.gallery_page, name="gallery"),
    path("gallery/<slug:key>/install/", gallery.gallery_install, name="gallery_install"),
    path("runs/", runs.run_list, name="run_list"),
    path("runs/<int:pk>/", runs.run_detail, name="run_detail"),
    path("runs/<int:pk>/customers.csv", runs.run_touched_csv, name="run_touched_csv"),
    path("runs/<int:pk>/replay/", runs.run_replay, name="run_replay"),
]

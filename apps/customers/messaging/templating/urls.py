"""Console pages of message templates and the brand, mounted under /admin/messaging/."""

from django.urls import path

from . import views

urlpatterns = [
    path("brand/", views.brand_edit, name="messaging-brand"),
    path("templates/", views.template_list, name="messaging-templates"),
    path("templates/add/", views.template_add, name="messaging-template-add"),
    path("templates/choices/", views.template_choices, name="messaging-template-choices"),
    path("templates/<int:pk>/", views.template_edit, name="messaging-template"),
    path("templates/<int:pk>/preview/", views.template_preview, name="messaging-template-preview"),
    path("templates/<int:pk>/publish/", views.template_publish, name="messaging-template-publish"),
    path("templates/<int:pk>/send-test/", views.template_send_test, name="messaging-template-send-test"),
]

# Public (e-mails, landing pages and the cockpit show the logo to anyone), mounted at the site's root.
public_urlpatterns = [
    path("brand/logo/<str:digest>.img", views.brand_logo, name="brand-logo"),
]

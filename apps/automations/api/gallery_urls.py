from django.urls import path
from rest_framework.routers import SimpleRouter

from .gallery import WorkflowRunNowView, WorkflowTemplateViewSet

router = SimpleRouter(trailing_slash=True)
router.register("workflow-templates", WorkflowTemplateViewSet, basename="workflow-template")

urlpatterns = [
    path("workflows/<int:pk>/run/", WorkflowRunNowView.as_view(), name="workflow-run-now"),
    *router.urls,
]

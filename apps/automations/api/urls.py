from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import WorkflowFieldsView, WorkflowRunViewSet, WorkflowViewSet

router = DefaultRouter(trailing_slash=True)
router.register("workflows", WorkflowViewSet, basename="workflow")
router.register("workflow-runs", WorkflowRunViewSet, basename="workflow-run")

urlpatterns = [
    path("workflow-fields/", WorkflowFieldsView.as_view(), name="workflow-fields"),
    *router.urls,
]

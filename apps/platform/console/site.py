"""The console's admin site: branded, navigation by task, a home page and the "System" page for admins."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path

from .navigation import ADMIN_PERMISSION, navigation_for

PRODUCT_NAME = "Loyalty Site"


class ConsoleSite(admin.AdminSite):
    """
    `admin.site` (installed by `ConsoleAdminConfig`): the product's name, the navigation of
    `navigation.NAVIGATION` on every page, a home page (`templates/console/home.html`) instead of the list
    of every model, which moves to "System → All models" for administrators.
    """

    site_header = PRODUCT_NAME
    site_title = PRODUCT_NAME
    index_title = "Home"
    enable_nav_sidebar = False
    index_template = "console/home.html"

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        context["console_nav"] = navigation_for(request.user, request.path)
        context["product_name"] = PRODUCT_NAME
        return context

    def get_urls(self) -> list[Any]:
        return [path("system/", self.admin_view(self.system_index), name="system"), *super().get_urls()]

    def system_index(self, request: HttpRequest) -> TemplateResponse:
        """Every model of every app, as Django's admin lists them: administrators only."""
        if not request.user.has_perm(ADMIN_PERMISSION):
            raise PermissionDenied
        context = {
            **self.each_context(request),
            "title": "System: all models",
            "subtitle": None,
            "app_list": self.get_app_list(request),
        }
        request.current_app = self.name
        return TemplateResponse(request, "admin/index.html", context)

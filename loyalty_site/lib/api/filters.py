"""The API's filter backend: django-filter, with range checks on every numeric and date filter."""

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django_filters.rest_framework import DjangoFilterBackend, FilterSet
from rest_framework.views import APIView

from .ranges import bound_form_fields


class BoundedFilterBackend(DjangoFilterBackend):
    """`?customer=1e300` or `?placed_after=9999-12-31T23:00-05:00` is a 400 naming the filter, not a 500."""

    def get_filterset(self, request: HttpRequest, queryset: QuerySet[Any], view: APIView) -> FilterSet | None:
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            bound_form_fields(filterset.form)
        return filterset

"""
Queries on hot paths compiled once. Building a queryset and compiling it costs more CPU than running it on a
warm connection (an `.exists()` with a join: about 0.4 ms of Python against 0.05 ms to execute; the customer
row a single-event POST reads, 30 columns: about 1 ms to compile — issue 12). These helpers build the query
once with the ORM, from the very same filters, keep its SQL, and run that SQL with each call's values:
`ExistsCompiled` for `.exists()`, `FirstCompiled` for the one row of a unique look-up (`[:1]`).

This module imports no app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connections, router
from django.db.models import Model, QuerySet
from django.db.models.sql import Query


class _Compiled:
    """
    `build(*values)` compiled once with markers in the values' place; each marker must be exactly one SQL
    parameter (filters by equality on text), checked at the first call, so a query that does not fit fails
    loudly instead of answering wrong.
    """

    def __init__(self, build: Callable[..., QuerySet[Any]], arity: int) -> None:
        self._build = build
        self._arity = arity
        self._compiled: tuple[type[Model], str, str, list[Any], list[int]] | None = None

    def _query(self, queryset: QuerySet[Any]) -> Query:
        raise NotImplementedError

    def _prepared(self, values: tuple[Any, ...]) -> tuple[type[Model], str, str, list[Any]]:
        if len(values) != self._arity:
            raise TypeError(f"{type(self).__name__} takes {self._arity} values, got {len(values)}")
        if self._compiled is None:
            markers = [f"\x00marker{index}\x00" for index in range(self._arity)]
            queryset = self._build(*markers)
            using = router.db_for_read(queryset.model)
            sql, template = self._query(queryset).get_compiler(using).as_sql()
            template = list(template)
            slots: list[int] = []
            for marker in markers:
                found = [position for position, param in enumerate(template) if param == marker]
                if len(found) != 1:
                    raise ValueError(f"{type(self).__name__}: each value must be one parameter of the query ({sql})")
                slots.append(found[0])
            self._compiled = (queryset.model, using, sql, template, slots)
        model, using, sql, template, slots = self._compiled
        params = list(template)
        for slot, value in zip(slots, values, strict=True):
            params[slot] = value
        return model, using, sql, params


class ExistsCompiled(_Compiled):
    """`build(*values).exists()`, the SQL compiled once."""

    def _query(self, queryset: QuerySet[Any]) -> Query:
        return queryset.query.exists(limit=True)

    def __call__(self, *values: Any) -> bool:
        _, using, sql, params = self._prepared(values)
        with connections[using].cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() is not None


class FirstCompiled(_Compiled):
    """`next(iter(build(*values)[:1]), None)` — the row of a look-up by a unique key — the SQL compiled once."""

    _row: tuple[list[str], Any, dict[int, Any]] | None = None

    def _query(self, queryset: QuerySet[Any]) -> Query:
        query = queryset[:1].query
        # The compiler's select list and converters, kept with the SQL: the row becomes a model instance
        # as the ORM's own iterator makes it (`Model.from_db` with each column's converted value).
        compiler = query.get_compiler(router.db_for_read(queryset.model))
        compiler.setup_query()
        columns = [column for column, _, _ in compiler.select]
        self._row = ([column.target.attname for column in columns], compiler, compiler.get_converters(columns))
        return query

    def __call__(self, *values: Any) -> Any:
        model, using, sql, params = self._prepared(values)
        assert self._row is not None  # set when compiled
        attnames, compiler, converters = self._row
        with connections[using].cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        if converters:
            row = next(iter(compiler.apply_converters([row], converters)))
        return model.from_db(using, attnames, row)

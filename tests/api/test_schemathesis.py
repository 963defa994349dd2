"""
Property-based API test: schemathesis generates requests from our published OpenAPI schema (valid and
invalid ones) for every operation, sends them to the WSGI application with a superuser's token and
fails on any 5xx, any response that does not match the schema (body, status code, content type).

Bounded and reproducible: a fixed number of examples per operation, derandomized (the same examples
every run), no Hypothesis example database. Runs on SQLite and PostgreSQL in the normal pytest run.
"""

import pytest
import schemathesis
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.platform.services import api_token_create
from tests.factories import CustomerFactory, ProductFactory, UserFactory, make_order

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 12
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


def _schema() -> schemathesis.schemas.BaseSchema:
    # Generated in-process (the same document `/api/schema/` serves), so collecting the tests needs
    # neither a database nor a running server.
    document = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(document)
    schema.app = WSGIHandler()
    return schema


SCHEMA = _schema()
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture
def superuser_token() -> str:
    cache.clear()  # (throttling counters of earlier tests in this process)
    # Some data to address: path ids are drawn at random, but list endpoints and the first ids hit rows.
    customer = CustomerFactory(external_id="c-1")
    ProductFactory(external_id="p-1")
    make_order(customer)
    _token, raw = api_token_create(
        user=UserFactory(username="root", is_staff=True, is_superuser=True), name="st", scopes=["admin"]
    )
    return raw


@pytest.fixture
def same_connection():
    """Keep the test's connection (and its transaction) across WSGI requests, as Django's test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.parametrize("operation", OPERATIONS, ids=[operation.label for operation in OPERATIONS])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_the_api_answers_every_generated_request_as_its_schema_says(operation, mode, superuser_token, same_connection):
    headers = {"Authorization": f"Bearer {superuser_token}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()

"""
Hot-path queries compiled once (issue 12): `ExistsCompiled` and `FirstCompiled` answer exactly what the ORM's
`.exists()` / `[:1]` answer for the same filters, with each call's values, and a query that does not fit (a
value that is not one parameter) fails at once instead of answering wrong.
"""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.automations.models import Workflow
from apps.automations.signals import _workflow_listens
from apps.customers.api.serializers import CustomerEventSerializer
from apps.customers.models import Customer, CustomerEvent
from apps.loyalty.choices import RuleKind
from apps.loyalty.models import EarningRule
from apps.loyalty.receivers import _event_earns
from loyalty_site.lib.api.output import FieldsBuiltOnceMixin
from loyalty_site.lib.hot_queries import ExistsCompiled, FirstCompiled
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db


def test_exists_compiled_answers_as_the_orm_for_each_value():
    CustomerFactory(email="a@example.com", country="PT")
    CustomerFactory(email="b@example.com", country="ES")
    by_country = ExistsCompiled(lambda country: Customer.objects.filter(country=country), arity=1)
    both = ExistsCompiled(lambda country, email: Customer.objects.filter(country=country, email=email), arity=2)

    for country in ("PT", "ES", "FR", "", "pt"):
        assert by_country(country) == Customer.objects.filter(country=country).exists()
    assert both("PT", "a@example.com") is True
    assert both("PT", "b@example.com") is False
    assert both("ES", "b@example.com") is True


def test_exists_compiled_is_one_statement_and_compiles_once():
    CustomerFactory(country="PT")
    by_country = ExistsCompiled(lambda country: Customer.objects.filter(country=country), arity=1)
    by_country("PT")

    with CaptureQueriesContext(connection) as captured:
        assert by_country("PT") is True
        assert by_country("FR") is False

    assert len(captured.captured_queries) == 2
    assert captured.captured_queries[0]["sql"].replace("PT", "FR") == captured.captured_queries[1]["sql"]


def test_first_compiled_returns_the_model_row_with_its_converted_values():
    customer = CustomerFactory(external_id="x-1", attributes={"vip": True}, total_spent=Decimal("12.50"))
    CustomerFactory(external_id="x-2")
    by_external_id = FirstCompiled(lambda external_id: Customer.objects.filter(external_id=external_id), arity=1)

    found = by_external_id("x-1")

    assert isinstance(found, Customer) and found.pk == customer.pk
    expected = Customer.objects.get(pk=customer.pk)
    for field in Customer._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
    assert found.attributes == {"vip": True} and found.total_spent == Decimal("12.50")
    assert by_external_id("nobody") is None


def test_a_build_whose_value_is_not_one_parameter_fails_loudly():
    # the value used twice: two parameters, which the compiled query could not fill in safely
    twice = ExistsCompiled(lambda value: Customer.objects.filter(email=value, phone=value), arity=1)
    with pytest.raises(ValueError, match="one parameter"):
        twice("a")
    with pytest.raises(TypeError):
        ExistsCompiled(lambda value: Customer.objects.filter(email=value), arity=1)("a", "b")


def test_the_outbox_consumers_checks_agree_with_their_orm_filters():
    # automations: active workflows with a current version on the trigger; loyalty: active fixed-event rules
    active_workflow("on custom", "event.custom", [add_tags("T")])
    paused = active_workflow("paused", "order.created", [add_tags("T")])
    Workflow.objects.filter(pk=paused.pk).update(status="paused")
    program = program_make()
    EarningRule.objects.create(program=program, name="r1", kind=RuleKind.FIXED_EVENT, event_name="review", points=5)
    EarningRule.objects.create(
        program=program, name="r2", kind=RuleKind.FIXED_EVENT, event_name="old", points=5, is_active=False
    )

    for trigger in ("event.custom", "order.created", "customer.registered"):
        expected = Workflow.objects.filter(status="active", current_version__trigger=trigger).exists()
        assert _workflow_listens(trigger) == expected, trigger
    assert [_workflow_listens(t) for t in ("event.custom", "order.created")] == [True, False]
    for name in ("review", "old", "bench"):
        expected = EarningRule.objects.filter(kind=RuleKind.FIXED_EVENT, event_name=name, is_active=True).exists()
        assert _event_earns(name) == expected, name
    assert [_event_earns(n) for n in ("review", "old")] == [True, False]


def test_an_output_serializer_builds_its_fields_once_and_serializes_as_before():
    customer = CustomerFactory(external_id="c-1")
    event = CustomerEvent.objects.create(customer=customer, name="review", properties={"stars": 5})

    first = CustomerEventSerializer(event).data
    second = CustomerEventSerializer(event).data

    assert first == second
    assert first["customer_external_id"] == "c-1" and first["name"] == "review"
    assert first["properties"] == {"stars": 5} and first["customer_id"] == customer.pk
    assert "_fields_built" in CustomerEventSerializer.__dict__
    # each instance gets its own bound copies
    one, two = CustomerEventSerializer(event), CustomerEventSerializer(event)
    assert one.fields["name"] is not two.fields["name"] and one.fields["name"].parent is one


def test_the_mixin_refuses_a_serializer_with_writable_fields():
    from rest_framework import serializers

    class Writable(FieldsBuiltOnceMixin, serializers.ModelSerializer):
        class Meta:
            model = CustomerEvent
            fields = ["name"]

    with pytest.raises(TypeError, match="output only"):
        Writable().fields  # noqa: B018  # building the fields is what is tested

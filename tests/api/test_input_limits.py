"""Numbers and dates outside what the database (or Python's datetime) holds are 400s with paths, never 500s."""

import pytest
from rest_framework.test import APIClient

from apps.customers.models import Order
from apps.loyalty.models import LedgerEntry, Program
from tests.factories import CustomerFactory, UserFactory, make_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(username="boss", is_staff=True, is_superuser=True))
    return client


def _paths(response) -> list[str]:
    return [error["path"] for error in response.json()["errors"]]


def test_awarding_more_points_than_a_column_holds_is_a_400_naming_points(staff):
    Program.objects.create(name="Club", slug="club", currency="USD")
    customer = CustomerFactory()

    response = staff.post(
        f"/api/v1/loyalty/customers/{customer.pk}/award/", {"points": 2**31, "reason": "x"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "points", "message": "Ensure this value is less than or equal to 2147483647.", "code": "max_value"}
    ]
    assert LedgerEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ("placed_after=99999-01-01", "placed_after"),
        ("placed_after=9999-12-31T23:00:00-05:00", "placed_after"),
        ("placed_before=0001-01-01T00:00:00%2B05:00", "placed_before"),
        ("customer=1e300", "customer"),
        ("customer=-99999999999999999999999", "customer"),
    ],
)
def test_absurd_list_filters_are_a_400_naming_the_filter(api, query, path):
    make_order(CustomerFactory())

    response = api.get(f"/api/v1/orders/?{query}")

    assert response.status_code == 400
    assert set(_paths(response)) == {path}


def test_a_relation_filter_with_a_huge_id_is_a_400(staff):
    response = staff.get("/api/v1/loyalty/tiers/?program=99999999999999999999999")

    assert response.status_code == 400
    assert _paths(response) == ["program"]


def test_an_order_placed_in_an_absurd_year_is_a_400_naming_the_field(api):
    body = {
        "customer": {"external_id": "c-1"},
        "currency": "USD",
        "placed_at": "9999-12-31T23:00:00-05:00",
        "lines": [{"title": "Tea", "quantity": 1, "unit_price": "3.00"}],
    }

    response = api.post("/api/v1/orders/", body, format="json")

    assert response.status_code == 400
    assert _paths(response) == ["placed_at"]
    assert Order.objects.count() == 0


def test_a_birthday_before_1900_is_a_400_naming_the_field(api):
    response = api.post("/api/v1/customers/", {"external_id": "c-1", "birthday": "1066-10-14"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "birthday", "message": "Dates must be between 1900-01-01 and 2999-12-31.", "code": "date_out_of_range"}
    ]


def test_a_value_a_check_constraint_refuses_is_a_400_with_its_path_before_the_database(staff):
    response = staff.post(
        "/api/v1/loyalty/programs/",
        {"name": "Club", "slug": "club", "currency": "USD", "points_per_unit": "-1"},
        format="json",
    )

    assert response.status_code == 400
    assert _paths(response) == ["points_per_unit"]
    assert Program.objects.count() == 0

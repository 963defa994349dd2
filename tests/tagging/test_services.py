import pytest
from django.core.exceptions import ValidationError

from apps.tagging import services
from apps.tagging.models import CustomerTag, ProductTag, Tag, TagAudit
from tests.factories import CustomerFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_tag_names_are_cleaned_and_deduplicated_case_insensitively():
    assert services.tag_names_clean(["  VIP ", "vip", "", "Kids  &  Baby", "Parent"]) == [
        "VIP",
        "Kids & Baby",
        "Parent",
    ]


def test_a_too_long_tag_name_is_refused_with_its_index():
    with pytest.raises(ValidationError) as error:
        services.tag_names_clean(["ok", "x" * 101])

    assert list(error.value.message_dict) == ["tags[1]"]


def test_tags_add_reuses_existing_tags_and_returns_only_new_rows():
    Tag.objects.create(name="VIP")
    customer = CustomerFactory()
    user = UserFactory()

    first = services.tags_add(customer=customer, names=["vip"], source="manual", actor=user)
    second = services.tags_add(customer=customer, names=["VIP", "Parent"], source="api")

    assert [row.tag.name for row in first] == ["VIP"]
    assert [row.tag.name for row in second] == ["Parent"]
    assert Tag.objects.count() == 2
    assert sorted(CustomerTag.objects.values_list("tag__name", "source", "added_by")) == [
        ("Parent", "api", None),
        ("VIP", "manual", user.pk),
    ]
    assert TagAudit.objects.filter(action="added").count() == 2


def test_tags_remove_removes_case_insensitively_and_audits():
    customer = CustomerFactory()
    services.tags_add(customer=customer, names=["VIP", "Parent"])

    removed = services.tags_remove(customer=customer, names=["vip", "unknown"], source="workflow", source_ref="run:1")

    assert removed == ["VIP"]
    assert list(CustomerTag.objects.values_list("tag__name", flat=True)) == ["Parent"]
    audit = TagAudit.objects.get(action="removed")
    assert (audit.tag_name, audit.source, audit.source_ref) == ("VIP", "workflow", "run:1")


def test_tag_create_returns_the_existing_tag_for_the_same_name():
    tag, created = services.tag_create(name="Newsletter")
    again, created_again = services.tag_create(name="  newsletter ")

    assert (created, created_again) == (True, False)
    assert again == tag


def test_tag_create_without_a_name_is_refused():
    with pytest.raises(ValidationError):
        services.tag_create(name="   ")

    assert Tag.objects.count() == 0


def test_product_tags_set_makes_the_tags_exactly_the_given_names():
    product = ProductFactory()
    services.product_tags_set(product=product, names=["Kids & Baby", "Gifts"])

    services.product_tags_set(product=product, names=["gifts", "Electronics"])

    assert sorted(ProductTag.objects.values_list("tag__name", flat=True)) == ["Electronics", "Gifts"]

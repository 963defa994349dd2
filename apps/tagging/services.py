"""Tag write services: every tag change is audited and `customer_tag_added` announces new tags."""

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower

from apps.customers.models import Customer, Product
from apps.customers.outbox import domain_event_emit

from . import signals
from .choices import TagSource
from .models import CustomerTag, ProductTag, Tag, TagAudit

MAX_TAG_LENGTH = 100


def tag_names_clean(names: Iterable[str]) -> list[str]:
    """Strip, drop empties and case-insensitive duplicates, keeping the first spelling and the order."""
    seen: set[str] = set()
    clean: list[str] = []
    for index, raw in enumerate(names):
        name = " ".join(str(raw).split())
        if not name:
            continue
        if len(name) > MAX_TAG_LENGTH:
            raise ValidationError({f"tags[{index}]": f"A tag name has at most {MAX_TAG_LENGTH} characters."})
        if name.lower() not in seen:
            seen.add(name.lower())
            clean.append(name)
    return clean


def tags_get_or_create(*, names: Iterable[str]) -> list[Tag]:
    """Return the Tag rows for `names` (case-insensitive), creating the missing ones."""
    names = tag_names_clean(names)
    if not names:
        return []
    lowered = [name.lower() for name in names]
    existing = {tag.name.lower(): tag for tag in Tag.objects.annotate(lname=Lower("name")).filter(lname__in=lowered)}
    missing = [Tag(name=name) for name in names if name.lower() not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {
            tag.name.lower(): tag for tag in Tag.objects.annotate(lname=Lower("name")).filter(lname__in=lowered)
        }
    return [existing[name.lower()] for name in names]


@transaction.atomic
def tags_add(
    *,
    customer: Customer,
    names: Iterable[str],
    source: str = TagSource.MANUAL,
    source_ref: str = "",
    actor: AbstractBaseUser | None = None,
) -> list[CustomerTag]:
    """
    Add tags to a customer; tags already present are left as they are. Returns the newly added
    CustomerTag rows; each sends `customer_tag_added` after commit.
    """
    tags = tags_get_or_create(names=names)
    if not tags:
        return []
    present = set(CustomerTag.objects.filter(customer=customer, tag__in=tags).values_list("tag_id", flat=True))
    wanted = [tag for tag in tags if tag.pk not in present]
    actor_id = actor.pk if actor is not None and actor.is_authenticated else None
    CustomerTag.objects.bulk_create(
        [
            CustomerTag(customer=customer, tag=tag, source=source, source_ref=source_ref[:64], added_by_id=actor_id)
            for tag in wanted
        ],
        ignore_conflicts=True,  # a concurrent writer may have added the same tag: that is fine
    )
    added = list(
        CustomerTag.objects.filter(customer=customer, tag__in=wanted, source=source, source_ref=source_ref[:64])
        .exclude(tag_id__in=present)
        .select_related("tag")
    )
    TagAudit.objects.bulk_create(
        TagAudit(
            customer=customer,
            tag_name=row.tag.name,
            action="added",
            source=source,
            source_ref=source_ref[:64],
            actor_id=actor_id,
        )
        for row in added
    )
    for row in added:
        domain_event_emit(
            signal=signals.customer_tag_added,
            name="customer.tag_added",
            customer=customer,
            payload={"customer_id": customer.pk, "tag": row.tag.name, "source": source, "source_ref": row.source_ref},
            cause=source_ref,
            sender=CustomerTag,
            tag=row.tag,
            customer_tag=row,
        )
    return added


@transaction.atomic
def tags_remove(
    *,
    customer: Customer,
    names: Iterable[str],
    source: str = TagSource.MANUAL,
    source_ref: str = "",
    actor: AbstractBaseUser | None = None,
) -> list[str]:
    """Remove tags from a customer; returns the names actually removed."""
    lowered = [name.lower() for name in tag_names_clean(names)]
    rows = list(
        CustomerTag.objects.select_for_update()
        .filter(customer=customer)
        .annotate(lname=Lower("tag__name"))
        .filter(lname__in=lowered)
        .select_related("tag")
    )
    if not rows:
        return []
    CustomerTag.objects.filter(pk__in=[row.pk for row in rows]).delete()
    actor_id = actor.pk if actor is not None and actor.is_authenticated else None
    TagAudit.objects.bulk_create(
        TagAudit(
            customer=customer,
            tag_name=row.tag.name,
            action="removed",
            source=source,
            source_ref=source_ref[:64],
            actor_id=actor_id,
        )
        for row in rows
    )
    return [row.tag.name for row in rows]


@transaction.atomic
def tag_create(*, name: str, description: str = "") -> tuple[Tag, bool]:
    """Create a tag, or return the existing one with this name (case-insensitive). Returns (tag, created)."""
    names = tag_names_clean([name])
    if not names:
        raise ValidationError({"name": "A tag needs a name."})
    existing = Tag.objects.annotate(lname=Lower("name")).filter(lname=names[0].lower()).first()
    if existing is not None:
        return existing, False
    return Tag.objects.create(name=names[0], description=description), True


@transaction.atomic
def product_tags_set(*, product: Product, names: Iterable[str]) -> list[Tag]:
    """Make the product's tags exactly `names`."""
    tags = tags_get_or_create(names=names)
    ProductTag.objects.filter(product=product).exclude(tag__in=tags).delete()
    ProductTag.objects.bulk_create([ProductTag(product=product, tag=tag) for tag in tags], ignore_conflicts=True)
    return tags

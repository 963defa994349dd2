"""
Admin for tags. Also extends the customer and product admins with tag inlines and the "Add tag to
selected customers" action: tagging depends on customers, so the extension lives on this side.
"""

from typing import TYPE_CHECKING, Any, TypedDict

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from apps.customers.admin import CustomerAdmin, ProductAdmin, ReadOnlyAdminMixin
from apps.customers.models import Customer, Product
from loyalty_site.lib.references import reference_link

from . import services
from .choices import TagSource
from .models import CustomerTag, ProductTag, Tag, TagAudit

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class TagCounts(TypedDict):
    """What `TagAdmin.get_queryset` annotates on each tag."""

    customer_total: int
    product_total: int


class AddTagForm(forms.Form):
    tag = forms.CharField(max_length=services.MAX_TAG_LENGTH, label="Tag name", help_text="Created if it is new.")


class TagListFilter(admin.SimpleListFilter):
    """Filter by tag through a subquery; lists tags from the (small) tag table, never scanning customers."""

    title = "tag"
    parameter_name = "tag"
    relation = "customer_tags"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(str(pk), name) for pk, name in Tag.objects.order_by("name").values_list("pk", "name")[:200]]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value or not value.isdigit():
            return queryset
        tagged = queryset.model.objects.filter(**{f"{self.relation}__tag_id": int(value)}).values("pk")
        return queryset.filter(pk__in=tagged)


class ProductTagListFilter(TagListFilter):
    relation = "product_tags"


class CustomerTagInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Tags are changed through the services (audited, trigger `customer.tag_added`), not edited inline."""

    model = CustomerTag
    readonly_fields = fields = ("tag", "source", "source_ref", "added_by", "added_at")
    extra = 0
    max_num = 0

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[CustomerTag]:
        return super().get_queryset(request).select_related("tag", "added_by")


class TaggedCustomerAdmin(CustomerAdmin):
    inlines = [CustomerTagInline]
    list_filter = [*CustomerAdmin.list_filter, TagListFilter]
    actions = ["add_tag_to_customers", *CustomerAdmin.actions]

    def has_tag_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tagging.add_customertag")

    @admin.action(description="Add tag to selected customers", permissions=["tag"])
    def add_tag_to_customers(self, request: HttpRequest, queryset: QuerySet[Customer]) -> TemplateResponse | None:
        form = AddTagForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            name = form.cleaned_data["tag"]
            added = 0
            try:
                for customer in queryset.order_by("pk"):
                    added += len(
                        services.tags_add(customer=customer, names=[name], source=TagSource.MANUAL, actor=request.user)
                    )
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
                return None
            total = queryset.count()
            self.message_user(
                request,
                f"Tag “{name}” added to {added} customer(s); {total - added} already had it.",
                messages.SUCCESS,
            )
            return None
        return TemplateResponse(
            request,
            "admin/tagging/customer_add_tag.html",
            {
                **self.admin_site.each_context(request),
                "title": "Add tag to selected customers",
                "opts": self.model._meta,
                "customers": list(queryset.order_by("pk")),
                "form": form,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )


class ProductTagInline(admin.TabularInline):
    model = ProductTag
    autocomplete_fields = ["tag"]
    extra = 1


class TaggedProductAdmin(ProductAdmin):
    inlines = [ProductTagInline, *ProductAdmin.inlines]
    list_filter = [*ProductAdmin.list_filter, ProductTagListFilter]


admin.site.unregister(Customer)
admin.site.register(Customer, TaggedCustomerAdmin)
admin.site.unregister(Product)
admin.site.register(Product, TaggedProductAdmin)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "customers", "products", "created_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tag]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                customer_total=Count("customer_tags", distinct=True), product_total=Count("product_tags", distinct=True)
            )
        )

    @admin.display(description="Customers", ordering="customer_total")
    def customers(self, tag: "WithAnnotations[Tag, TagCounts]") -> int:
        return tag.customer_total

    @admin.display(description="Products", ordering="product_total")
    def products(self, tag: "WithAnnotations[Tag, TagCounts]") -> int:
        return tag.product_total


@admin.display(description="Reference", ordering="source_ref")
def source_ref_link(row: Any) -> str:
    """The run, bulk run, API token or import that added the tag: a link, or readable text."""
    return reference_link(row.source_ref)


@admin.register(CustomerTag)
class CustomerTagAdmin(admin.ModelAdmin):
    """Adding here goes through `tags_add` (audited, sends `customer.tag_added`); deleting through `tags_remove`."""

    list_display = ["tag", "customer", "source", source_ref_link, "added_by", "added_at"]
    list_filter = ["source", ("tag", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["tag__name", "customer__email", "customer__external_id", "source_ref"]
    list_select_related = ["tag", "customer", "added_by"]
    autocomplete_fields = ["customer", "tag"]
    readonly_fields = ["source", "source_ref", "added_by", "added_at"]
    show_full_result_count = False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: CustomerTag, form: Any, change: bool) -> None:
        added = services.tags_add(
            customer=obj.customer, names=[obj.tag.name], source=TagSource.MANUAL, actor=request.user
        )
        existing = added[0] if added else CustomerTag.objects.get(customer=obj.customer, tag=obj.tag)
        obj.pk = existing.pk
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: CustomerTag) -> None:
        services.tags_remove(customer=obj.customer, names=[obj.tag.name], source=TagSource.MANUAL, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[CustomerTag]) -> None:
        for row in queryset.select_related("customer", "tag"):
            self.delete_model(request, row)


@admin.register(ProductTag)
class ProductTagAdmin(admin.ModelAdmin):
    list_display = ["tag", "product"]
    list_filter = [("tag", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["tag__name", "product__title", "product__external_id"]
    list_select_related = ["tag", "product"]
    autocomplete_fields = ["product", "tag"]


@admin.register(TagAudit)
class TagAuditAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who or what added or removed a tag, and when."""

    list_display = ["created_at", "action", "tag_name", "customer", "source", source_ref_link, "actor"]
    list_filter = ["action", "source"]
    search_fields = ["tag_name", "customer__email", "customer__external_id", "source_ref"]
    list_select_related = ["customer", "actor"]
    autocomplete_fields = ["customer"]
    date_hierarchy = "created_at"

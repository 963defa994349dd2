from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from apps.tagging.selectors import condition_suggestions
from loyalty_site.lib.forms import ConditionField

from . import services
from .models import Segment, SegmentMember


class SegmentForm(forms.ModelForm):
    condition = ConditionField(
        scopes=("customer",),
        audience=True,
        check=services.segment_condition_errors,
        suggestions=condition_suggestions,
        preview_url="campaigns-segment-preview",
        empty_label="No condition: every customer is a member.",
        help_text="Who belongs to the segment. Members are recomputed when you save.",
    )

    class Meta:
        model = Segment
        fields = ["name", "description", "condition", "is_active"]


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentForm
    list_display = ["name", "members_link", "is_active", "refreshed_at", "updated_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "description"]
    readonly_fields = ["members_link", "refreshed_at", "created_at", "updated_at"]
    actions = ["refresh_selected"]

    @admin.display(description="Members", ordering="member_count")
    def members_link(self, segment: Segment) -> str:
        """The member count, linking to the members (computed when the segment was saved or refreshed)."""
        if segment.pk is None:
            return "—"
        url = reverse("admin:campaigns_segmentmember_changelist") + f"?segment__id__exact={segment.pk}"
        return format_html('<a href="{}" data-testid="segment-members">{}</a>', url, f"{segment.member_count:,}")

    def save_model(self, request, obj, form, change):
        fields = {key: form.cleaned_data[key] for key in ("name", "condition", "description", "is_active")}
        if change:
            services.segment_update(segment=obj, **fields)
        else:
            created = services.segment_create(**fields)
            obj.pk = created.pk

    @admin.action(description="Refresh members of the selected segments", permissions=["change"])
    def refresh_selected(self, request, queryset):
        total = 0
        for segment in queryset.order_by("pk"):
            total += services.segment_refresh(segment=segment).member_count
        self.message_user(request, f"Refreshed {queryset.count()} segment(s): {total} members.", messages.SUCCESS)


@admin.register(SegmentMember)
class SegmentMemberAdmin(admin.ModelAdmin):
    list_display = ["segment", "customer", "added_at"]
    list_filter = ["segment"]
    list_select_related = ["segment", "customer"]
    search_fields = ["customer__email", "customer__external_id", "segment__name"]
    autocomplete_fields = ["customer"]

    def has_add_permission(self, request):
        return False  # members come from the segment's condition

    def has_change_permission(self, request, obj=None):
        return False


from .fraud import admin as fraud_admin  # noqa: E402, F401  (registers the fraud rules and cases)
from .landing import admin as landing_admin  # noqa: E402, F401  (registers the form submissions, read-only)
from .promotions import admin as promotions_admin  # noqa: E402, F401  (registers the promotions models)

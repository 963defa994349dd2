from django import forms
from django.contrib import admin, messages

from loyalty_site.lib.forms import BoundedJSONField

from . import services
from .models import Segment, SegmentMember


class SegmentForm(forms.ModelForm):
    condition = BoundedJSONField(required=False, help_text="Condition JSON; empty means every customer")

    class Meta:
        model = Segment
        fields = ["name", "description", "condition", "is_active"]

    def clean_condition(self):
        condition = self.cleaned_data.get("condition") or None
        errors = services.segment_condition_errors(condition)
        if errors:
            raise forms.ValidationError([f"{path}: {message}" for path, message in errors])
        return condition


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentForm
    list_display = ["name", "member_count", "is_active", "refreshed_at", "updated_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "description"]
    readonly_fields = ["member_count", "refreshed_at", "created_at", "updated_at"]
    actions = ["refresh_selected"]

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


from .promotions import admin as promotions_admin  # noqa: E402, F401  (registers the promotions models)

"""The gallery's templates and their params, without installing anything."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from apps.automations import gallery

SEED_TEMPLATES = [
    "unsubscribed",
    "offline_customer",
    "refunded_customer",
    "registered",
    "product_tag_sync",
    "inactive_high_value",
    "currency",
    "active_high_value",
    "country",
    "gender_keywords",
    "spend_tiers",
    "first_time_buyer",
    "staff",
    "high_value",
    "repeat_buyer",
    "abandoned_cart_products",
]


def test_the_gallery_ships_the_16_seed_templates_in_order_plus_two_reminders():
    keys = [spec.key for spec in gallery.template_list()]

    # Other apps may add theirs after these (template_register from their automation.py).
    assert keys[:18] == [*SEED_TEMPLATES, "planned_visit_reminder", "near_store"]


def test_every_template_builds_with_its_defaults_and_names_its_trigger():
    for spec in gallery.template_list():
        built = spec.build({})
        assert built["definition"]["schema"] == 1
        assert built["definition"]["trigger"]["event"] == spec.trigger
        assert built["definition"]["steps"] or built["definition"]["state"]["tag"], spec.key


def test_a_changed_param_lands_in_the_definition_and_the_settings():
    built = gallery.TEMPLATES["inactive_high_value"].build({"tag": "Lapsed VIP", "days": "45", "min_spent": 750})

    assert built["definition"]["state"] == {"tag": "Lapsed VIP"}
    assert built["definition"]["trigger"] == {
        "event": "customer.state_tag",
        "where": {
            "all": [
                {"field": "customer.last_order_at", "op": "lt", "value": {"days_ago": 45}},
                {"field": "customer.total_spent", "op": "gte", "value": 750},
            ]
        },
    }
    assert built["settings"] == {}


def test_bad_params_are_refused_with_their_paths():
    spec = gallery.TEMPLATES["inactive_high_value"]

    with pytest.raises(ValidationError) as error:
        spec.build({"tag": "  ", "days": 0, "min_spent": "-1", "colour": "red"})

    assert set(error.value.message_dict) == {"params.tag", "params.days", "params.min_spent", "params.colour"}


def test_spend_tier_thresholds_must_be_ordered():
    with pytest.raises(ValidationError) as error:
        gallery.TEMPLATES["spend_tiers"].build({"high_min": "300", "mid_min": "300"})

    assert list(error.value.message_dict) == ["params.mid_min"]


def test_param_coercion_keeps_money_exact_and_normalises_text():
    spec = gallery.TEMPLATES["high_value"]

    clean = spec.clean_params({"tag": "  Big   spender ", "min_orders": "7", "min_spent": "999.9"})

    assert clean == {"tag": "Big spender", "min_orders": 7, "min_spent": Decimal("999.90")}


def test_unknown_template_is_a_validation_error_on_key():
    with pytest.raises(ValidationError) as error:
        gallery.template_get("nope")

    assert list(error.value.message_dict) == ["key"]

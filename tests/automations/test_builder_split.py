"""The A/B split in the builder's JSON <-> cards mapping (model.js, run in node): round trip and error paths."""

import shutil

import pytest

from tests.automations.test_builder_mapping import run_mapping

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

SPLIT = {
    "schema": 1,
    "trigger": {"event": "event.custom"},
    "steps": [
        {
            "id": "ab",
            "comment": "kept as written",
            "split": [
                {
                    "name": "A",
                    "percent": 34,
                    "steps": [{"id": "t1", "action": "customer.add_tags", "params": {"tags": ["A"]}}],
                },
                {
                    "name": "B",
                    "percent": 33,
                    "steps": [
                        {"id": "w", "wait": {"days": 2}},
                        {"id": "t2", "action": "customer.add_tags", "params": {"tags": ["B"]}},
                    ],
                },
                {"percent": 33, "name": "Control"},
            ],
        },
        {"id": "after", "if": {"field": "customer.orders_count", "op": "gt", "value": 0}, "then": [], "else": []},
    ],
}


def test_a_split_round_trips_unchanged_and_its_error_paths_land_on_their_cards(tmp_path):
    odd = {
        "schema": 1,
        "trigger": {"event": "event.custom"},
        "steps": [{"id": "x", "split": ["not a branch", {"name": "B"}]}],
    }
    result = run_mapping(
        tmp_path,
        [SPLIT, odd],
        paths=[
            (0, "steps[0].split[1].steps[1].params.tags[0]"),
            (0, "steps[0].split[2].percent"),
            (0, "steps[0].split"),
        ],
    )
    assert result["output"] == [SPLIT, odd]
    assert result["located"][0]["rest"] == "params.tags[0]"
    assert result["located"][1] == {"target": "ab", "rest": "split[2].percent", "condition": False}
    assert result["located"][2] == {"target": "ab", "rest": "split", "condition": False}

"""dbt's copies of the contract's word lists say the same as ewh/contract/vocabulary.py.

SQL needs these lists where it runs: the `accepted_values` tests in the models' yml, the
`canonical_event_types` and `interaction_event_types` macros, the `event_type_map` seed and
the engagement weights in dbt_project.yml. Each is read here from its file and compared.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import yaml

from ewh.common.settings import PROJECT_ROOT
from ewh.contract.rules import SCHEMA_DIR
from ewh.contract.vocabulary import CANONICAL_EVENT_TYPES, MESSAGE_TYPES, OTHER_EVENT_TYPE

EVENT_TYPES = {*CANONICAL_EVENT_TYPES, OTHER_EVENT_TYPE}


def _accepted_values(column_name: str) -> list[tuple[str, list[str]]]:
    """(yml file, values) of every accepted_values test on a column of that name."""
    found = []
    for path in sorted((PROJECT_ROOT / "models").rglob("*.yml")):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []):
            for column in model.get("columns", []):
                if column.get("name") != column_name:
                    continue
                for test in column.get("data_tests", []):
                    if isinstance(test, dict) and "accepted_values" in test:
                        spec = test["accepted_values"]
                        values = spec.get("arguments", spec).get("values")
                        found.append((path.name, values))
    return found


def _macro_list(name: str) -> list[str]:
    text = (PROJECT_ROOT / "macros" / "rules" / "event_types.sql").read_text()
    body = re.search(r"macro " + name + r"\(\).*?return\(\[(.*?)\]\)", text, re.S)
    assert body, f"macro {name} not found"
    return re.findall(r"'([a-z_]+)'", body.group(1))


def test_message_type_accepted_values_are_the_contract_message_types():
    tests = _accepted_values("message_type")
    assert tests, "stg_events.message_type lost its accepted_values test"
    for path, values in tests:
        assert sorted(values) == sorted(MESSAGE_TYPES), path


def test_event_type_accepted_values_are_the_canonical_types_and_other():
    tests = _accepted_values("event_type")
    assert tests, "stg_events.event_type lost its accepted_values test"
    for path, values in tests:
        assert len(values) == len(set(values)) and set(values) == EVENT_TYPES, path


def test_the_canonical_event_types_macro_is_the_vocabulary_plus_other_in_order():
    assert _macro_list("canonical_event_types") == [*CANONICAL_EVENT_TYPES, OTHER_EVENT_TYPE]


def test_interaction_event_types_are_canonical():
    interactions = _macro_list("interaction_event_types")
    assert interactions and set(interactions) <= set(CANONICAL_EVENT_TYPES)


def test_the_seed_maps_only_contract_message_types_onto_every_canonical_type():
    with (PROJECT_ROOT / "seeds" / "event_type_map.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {row["message_type"] for row in rows} <= set(MESSAGE_TYPES)
    # Every canonical type is reachable from some message, and nothing else is produced.
    assert {row["event_type"] for row in rows} - {OTHER_EVENT_TYPE} == set(CANONICAL_EVENT_TYPES)


def test_each_message_type_has_its_json_schema():
    schemas = {p.stem for p in Path(SCHEMA_DIR, "v1").glob("*.json")} - {"common", "message"}
    assert schemas == set(MESSAGE_TYPES)


def test_engagement_weights_name_only_canonical_types():
    variables = yaml.safe_load((PROJECT_ROOT / "dbt_project.yml").read_text())["vars"]
    assert set(variables["engagement_event_weights"]) <= set(CANONICAL_EVENT_TYPES)

"""Attribute groups (alm_tf.groups, the schemas' groups) and per-request thresholds."""

import json

import numpy as np
import pytest

from alm_tf import artifacts
from alm_tf import groups as g
from alm_tf.data import mapping, schemas, synth
from alm_tf.training import setup
from alm_tf.training.config import TrainConfig

PA = schemas.PA100K_ATTRIBUTES


def _probabilities(values: dict, attributes=PA, default=0.1):
    return np.asarray([values.get(a, default) for a in attributes], np.float32)


@pytest.mark.parametrize("name", sorted(schemas.ATTRIBUTE_GROUPS))
def test_every_known_list_has_valid_groups(name):
    attributes, groups = schemas.ATTRIBUTE_GROUPS[name]
    bound = g.infer(attributes)
    assert bound.source == name and bound.groups == groups
    grouped = [a for group in groups for a in group.attributes]
    assert len(grouped) == len(set(grouped)) and set(grouped) <= set(attributes)
    assert set(bound.keys) == {x.name for x in groups} | set(bound.ungrouped)
    if name != "synth":  # the data sets' groups: gender and age at least
        assert {"gender", "age"} <= set(bound.csv_columns)


def test_pa100k_answer_reads_like_the_issue():
    probs = _probabilities({"Female": 0.9, "Age18-60": 0.8, "AgeOver60": 0.3, "Back": 0.6, "Front": 0.5,
                            "Backpack": 0.7, "HandBag": 0.4, "LongSleeve": 0.55, "ShortSleeve": 0.6,
                            "Trousers": 0.45, "Shorts": 0.2, "boots": 0.8})
    answer = g.infer(PA).answer(probs, probs > 0.5)
    assert answer == {"gender": "female", "age": "18-60", "orientation": "back", "accessories": [],
                      "carrying": ["backpack"], "sleeves": "short", "upper_pattern": [],
                      "lower_pattern": [], "lower": "trousers", "LongCoat": False, "boots": True}
    # exclusive groups answer by argmax even when every member is below its threshold
    assert answer["lower"] == "trousers" and probs[PA.index("Trousers")] < 0.5


def test_each_kind_and_ties():
    attributes = ("a", "b", "c", "d", "e")
    groups = g.from_description({"groups": [
        {"name": "ex", "kind": "exclusive", "attributes": ["a", "b"], "values": ["A", "B"]},
        {"name": "bi", "kind": "binary", "attributes": ["c"], "values": ["yes", "no"]},
        {"name": "mu", "kind": "multi", "attributes": ["d", "e"], "values": ["D", "E"]}]}, attributes)
    assert groups.ungrouped == () and groups.csv_columns == ("ex", "bi", "mu")
    probs = np.array([0.5, 0.5, 0.2, 0.9, 0.7])
    assert groups.answer(probs, [0, 0, 1, 1, 0]) == {"ex": "A", "bi": "yes", "mu": ["D"]}  # tie: first
    assert groups.answer(probs, [0, 0, 0, 0, 0]) == {"ex": "A", "bi": "no", "mu": []}
    assert groups.csv_values({"ex": "A", "bi": "no", "mu": ["D", "E"]}) == ["A", "no", "D;E"]
    many = groups.answers(np.stack([probs, probs[::-1]]), np.ones((2, 5), int))
    assert [a["ex"] for a in many] == ["A", "B"]


def test_unknown_lists_answer_every_attribute_on_its_own():
    groups = g.infer(["x", "y"])
    assert groups.source == g.NO_GROUPS and groups.groups == () and groups.csv_columns == ()
    assert groups.answer([0.9, 0.2], [1, 0]) == {"x": True, "y": False}


def test_dataset_hint_keeps_groups_whose_attributes_are_present():
    attributes = list(schemas.RAP_ATTRIBUTES[:7]) + ["Extra"]  # e.g. --all_attributes
    groups = g.infer(attributes, dataset="rap")
    assert groups.source == "rap" and groups.csv_columns == ("gender", "age", "body")
    assert g.infer(attributes).source == g.NO_GROUPS  # without the hint: not a known list


def test_description_round_trip_and_file(tmp_path):
    groups = g.infer(PA)
    description = groups.description()
    assert set(description) == {"format_version", "source", "attributes", "groups", "ungrouped", "rules"}
    assert description["ungrouped"] == ["LongCoat", "boots"]
    json.dumps(description)  # JSON-able
    again = g.from_description(json.loads(json.dumps(description)), PA)
    assert again == groups
    path = tmp_path / "groups.json"
    path.write_text(json.dumps({"groups": description["groups"][:2]}))
    declared = g.read_groups_file(str(path), PA)
    assert declared.source == g.DECLARED and declared.csv_columns == ("gender", "age")


@pytest.mark.parametrize("payload,needle", [
    ([], "expected a JSON object with a 'groups' list"),
    ({"groups": [{"name": "x", "kind": "one-of", "attributes": ["a"], "values": ["A"]}]}, "kind must be one of"),
    ({"groups": [{"name": "x", "kind": "exclusive", "attributes": ["a"], "values": ["A"]}]}, "at least 2"),
    ({"groups": [{"name": "x", "kind": "binary", "attributes": ["a"], "values": ["A"]}]}, "2 values"),
    ({"groups": [{"name": "x", "kind": "multi", "attributes": ["zz"], "values": ["Z"]}]}, "'zz'"),
    ({"groups": [{"name": "a", "kind": "multi", "attributes": ["b"], "values": ["B"]}]}, "also an attribute"),
    ({"groups": [{"name": "x", "kind": "multi", "attributes": ["a"], "values": ["A"]},
                 {"name": "y", "kind": "multi", "attributes": ["a"], "values": ["A"]}]}, "is in groups"),
    ({"groups": [{"name": "x", "kind": "multi", "attributes": ["a"], "values": ["A"], "colour": 1}]},
     "unknown key 'colour'"),
    ({"groups": [], "attributes": ["q"]}, "other attributes"),
    ({"groups": [], "format_version": 9}, "format_version"),
])
def test_bad_groups_one_line(payload, needle):
    with pytest.raises(g.GroupsError) as info:
        g.from_description(payload, ["a", "b", "c"], "groups.json")
    message = str(info.value)
    assert needle in message and "\n" not in message and message.startswith("groups.json")


def test_for_data_declared_then_file_then_known(tmp_path):
    declared = {"groups": [{"name": "look", "kind": "multi", "attributes": ["hat"], "values": ["hat"]}]}
    manifest = {"dataset": "csv", "attributes": list(synth.ATTRIBUTES)}
    assert g.for_data(manifest, str(tmp_path)).source == "synth"  # alm-synth's list is known
    (tmp_path / g.GROUPS_FILE).write_text(json.dumps(declared))
    assert g.for_data(manifest, str(tmp_path)).csv_columns == ("look",)
    with_field = dict(manifest, groups={"groups": []})
    assert g.for_data(with_field, str(tmp_path)).csv_columns == ()
    # a merge writes PA-100K's attributes (its mapping's targets): PA-100K's groups
    merged = {"dataset": "pa100k+rap", "attributes": list(mapping.load_mapping("to_pa100k").attributes)}
    assert g.for_data(merged).source == "pa100k"


# ------------------------------------------------------------------ thresholds


@pytest.mark.parametrize("values,expected", [
    ([], None), (["0.4"], 0.4), (["0.1", "0.9"], [0.1, 0.9]), (["a=0.2", " b = 0.7"], {"a": 0.2, "b": 0.7}),
    (["Skirt&Dress=0.3"], {"Skirt&Dress": 0.3}),
])
def test_parse_threshold_values(values, expected):
    assert g.parse_threshold_values(values) == expected


@pytest.mark.parametrize("values,needle", [
    (["a=0.2", "0.3"], "either all NAME=VALUE or all numbers"),
    (["x"], "not a number"),
    (["a=0.2", "a=0.3"], "given twice"),
])
def test_parse_threshold_values_bad(values, needle):
    with pytest.raises(g.GroupsError, match=needle):
        g.parse_threshold_values(values)


def test_relabel_equals_rethresholding_probabilities():
    rng = np.random.default_rng(0)
    attributes = ["a", "b", "c"]
    probs = rng.uniform(size=(20, 3)).astype(np.float32)
    model = (probs > np.float32([0.5, 0.3, 0.7])).astype(np.int32)
    np.testing.assert_array_equal(g.relabel(probs, model, None, attributes), model)
    np.testing.assert_array_equal(g.relabel(probs, model, 0.4, attributes), probs > np.float32(0.4))
    per = [0.2, 0.6, 0.9]
    np.testing.assert_array_equal(g.relabel(probs, model, per, attributes), probs > np.float32(per))
    mapped = g.relabel(probs, model, {"b": 0.8}, attributes)
    np.testing.assert_array_equal(mapped[:, 1], probs[:, 1] > np.float32(0.8))
    np.testing.assert_array_equal(mapped[:, [0, 2]], model[:, [0, 2]])  # the model's elsewhere


@pytest.mark.parametrize("spec,needle", [
    (1.5, "must lie in [0, 1]"), (float("nan"), "must lie in [0, 1]"), ([0.1, 0.2], "2 thresholds for 3"),
    ({"zz": 0.2}, "unknown attribute 'zz'"), ("0.3", "a number, a list or a map"), (True, "must be a number"),
])
def test_bad_thresholds(spec, needle):
    with pytest.raises(g.GroupsError) as info:
        g.request_thresholds(spec, ["a", "b", "c"])
    assert needle in str(info.value)


# ---------------------------------------------------- where groups are recorded


def test_keras_description_and_run_config_carry_groups(tmp_path):
    assert artifacts.keras_description(PA)["groups"]["source"] == "pa100k"
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    manifest = {"dataset": "csv", "attributes": ["hat", "coat"], "splits": {
        "train": {"num_examples": 8, "shards": [], "positive_ratio": [0.5, 0.5]}}}
    (data_dir / g.GROUPS_FILE).write_text(json.dumps({"groups": [
        {"name": "wear", "kind": "multi", "attributes": ["hat", "coat"], "values": ["hat", "coat"]}]}))
    config = TrainConfig(data_dir=str(data_dir), model_dir=str(tmp_path / "m"), batch_size=4)
    plan = setup.make_plan(config, manifest)
    written = setup.run_config(config, plan)
    assert written["groups"]["groups"][0]["name"] == "wear" and written["groups"]["source"] == "declared"
    (data_dir / g.GROUPS_FILE).write_text(json.dumps({"groups": [
        {"name": "wear", "kind": "multi", "attributes": ["scarf"], "values": ["scarf"]}]}))
    with pytest.raises(setup.ConfigError, match="'scarf'"):
        setup.make_plan(config, manifest)

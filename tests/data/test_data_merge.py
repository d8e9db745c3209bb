"""alm_tf.data.merge and alm-merge: relabelling, provenance, bad input."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import tensorflow as tf
from absl.testing import flagsaver
from tests.data.merge_helpers import MAPPING, TARGETS, converted, write_mapping

from alm_tf.data import example, make_dataset, manifest_sources
from alm_tf.data.mapping import MappingError
from alm_tf.data.merge import MergeConfig, MergeError, merge, parse_inputs
from pipelines import merge as merge_cli


def _records(data_dir, split):
    manifest = json.load(open(os.path.join(data_dir, "manifest.json")))
    out = []
    for shard in manifest["splits"][split]["shards"]:
        for raw in tf.data.TFRecordDataset(os.path.join(data_dir, shard)).as_numpy_iterator():
            out.append(tf.train.Example.FromString(raw).features.feature)
    return out


def _by_name(records):
    return {r[example.FILENAME].bytes_list.value[0].decode(): r for r in records}


@pytest.fixture
def two_sets(tmp_path):
    a = converted(str(tmp_path / "A"), ["hat", "plain"], {"train": 9, "test": 4}, seed=1)
    b = converted(str(tmp_path / "B"), ["bag", "box", "shoes"], {"train": 5, "val": 3, "test": 2}, seed=2)
    return a, b, write_mapping(str(tmp_path / "map.json"))


def _cfg(inputs, mapping, out, **kw):
    kw.setdefault("show_progress", False)
    return MergeConfig(inputs=tuple(inputs), mapping=mapping, output_dir=out, **kw)


def test_merge_relabels_copies_bytes_and_records_provenance(two_sets, tmp_path):
    a, b, mapping = two_sets
    out = str(tmp_path / "merged")
    result = merge(_cfg([("a", a), ("b", b)], mapping, out, num_shards=3))
    m = result.manifest
    assert m["attributes"] == TARGETS and m["format"] == "merged" and m["dataset"] == "a+b"
    assert list(m["splits"]) == ["train", "test", "val"]
    assert {s: v["num_examples"] for s, v in m["splits"].items()} == {"train": 14, "test": 6, "val": 3}
    assert m["splits"]["train"]["num_examples_by_source"] == {"a": 9, "b": 5}
    assert m["splits"]["val"]["source_splits"] == {"b": ["val"]}
    assert manifest_sources(m) == ("a", "b")
    assert m["sources"][0]["known_attributes"] == ["top", "bottom"]
    assert m["sources"][1]["rules"] == {"top": None, "bottom": None, "left": {"any": ["bag", "box"]}, "right": None}
    assert m["mapping"]["name"] == "map" and len(m["mapping"]["sha256"]) == 64
    assert m["lineage"] == sorted([os.path.realpath(a), os.path.realpath(b)])
    assert m["splits"]["train"]["num_unknown"] == [5, 5, 9, 14]
    assert m["splits"]["train"]["shards"] == [f"train-0000{i}-of-00003.tfrecord" for i in range(3)]
    merged = _by_name(_records(out, "train"))
    sources = {**{k: ("a", r) for k, r in _by_name(_records(a, "train")).items()},
               **{k: ("b", r) for k, r in _by_name(_records(b, "train")).items()}}
    assert set(merged) == set(sources)
    positives = [0, 0, 0, 0]
    for name, record in merged.items():
        source, original = sources[name]
        labels = list(record[example.ATTRIBUTES].int64_list.value)
        old = list(original[example.ATTRIBUTES].int64_list.value)
        expected = [old[0], 1 - old[1], -1, -1] if source == "a" else [-1, -1, int(old[0] or old[1]), -1]
        assert labels == expected, name
        positives = [p + (v == 1) for p, v in zip(positives, labels)]
        assert record[example.SOURCE].bytes_list.value[0].decode() == source
        for key in (example.ENCODED, example.FORMAT, example.HEIGHT, example.WIDTH):
            assert record[key] == original[key], (name, key)  # copied, not re-encoded
    assert m["splits"]["train"]["positive_ratio"] == pytest.approx(
        [round(positives[0] / 9, 6), round(positives[1] / 9, 6), round(positives[2] / 5, 6), 0.0])
    # The input pipeline reads the sources back.
    ds = make_dataset(out, "test", batch_size=6, image_size=(16, 8), with_sources=True)
    _, labels, names = next(iter(ds))
    assert sorted(names.numpy().tolist()) == [b"a"] * 4 + [b"b"] * 2
    assert set(labels.numpy().ravel().tolist()) <= {-1.0, 0.0, 1.0}


def test_sources_are_interleaved_in_proportion(tmp_path):
    a = converted(str(tmp_path / "A"), ["hat", "plain"], {"train": 12}, seed=1)
    b = converted(str(tmp_path / "B"), ["bag", "box"], {"train": 4}, seed=2)
    out = str(tmp_path / "m")
    merge(_cfg([("a", a), ("b", b)], write_mapping(str(tmp_path / "m.json")), out, num_shards=1))
    order = [r[example.SOURCE].bytes_list.value[0].decode() for r in _records(out, "train")]
    assert order.count("b") == 4 and order[:8].count("b") == 2  # spread, not appended


def test_splits_option_and_ignored_splits(two_sets, tmp_path):
    a, b, mapping = two_sets
    out = str(tmp_path / "m")
    m = merge(_cfg([("a", a), ("b", b)], mapping, out, splits=(("trainval", ("train", "val")),))).manifest
    assert list(m["splits"]) == ["trainval"] and m["splits"]["trainval"]["num_examples"] == 17
    assert m["ignored_rows_of_other_splits"] == {"a/test": 4, "b/test": 2}
    with pytest.raises(MergeError, match="'nope'"):
        merge(_cfg([("a", a)], mapping, str(tmp_path / "x"), splits=(("t", ("nope",)),)))


def test_same_input_bytes_twice_give_the_same_output(two_sets, tmp_path):
    a, b, mapping = two_sets
    outs = [str(tmp_path / n) for n in ("m1", "m2")]
    for out in outs:
        merge(_cfg([("a", a), ("b", b)], mapping, out))
    for shard in json.load(open(os.path.join(outs[0], "manifest.json")))["splits"]["train"]["shards"]:
        assert open(os.path.join(outs[0], shard), "rb").read() == open(os.path.join(outs[1], shard), "rb").read()


def _assert_nothing_written(out):
    assert not os.path.exists(out) or not any(
        n.endswith((".tfrecord", ".tmp", ".json")) for n in os.listdir(out))


@pytest.mark.parametrize("mapping, needle", [
    ({**MAPPING, "sources": {"a": {"top": "helmet"}, "b": {"left": "bag"}}}, "'helmet' does not exist in data set a"),
    ({**MAPPING, "sources": {"a": {"tops": "hat"}, "b": {"left": "bag"}}}, "target attribute 'tops' does not exist"),
    ({**MAPPING, "attributes": ["top", "top"]}, "names target 'top' twice"),
    ({**MAPPING, "sources": {"a": {"top": {"not": "hat", "x": 1}}, "b": {"left": "bag"}}}, "is not a rule"),
    ({**MAPPING, "sources": {"a": {"top": 1}, "b": {"left": "bag"}}}, "1 is not a rule"),
    ({**MAPPING, "sources": {"a": {"top": "hat"}}}, "no section 'b'"),
    ({**MAPPING, "sources": {"a": {"top": None}, "b": {"left": "bag"}}}, "maps no attribute"),
    ({**MAPPING, "source": {}}, "unknown key 'source'"),
])
def test_bad_mapping_names_the_value_and_writes_nothing(two_sets, tmp_path, mapping, needle):
    a, b, _ = two_sets
    out = str(tmp_path / "m")
    with pytest.raises(MappingError, match=needle):
        merge(_cfg([("a", a), ("b", b)], write_mapping(str(tmp_path / "bad.json"), mapping), out))
    _assert_nothing_written(out)


def test_duplicate_target_key_in_a_section(two_sets, tmp_path):
    a, b, _ = two_sets
    text = ('{"attributes": ["top", "left"], "sources": {"a": {"top": "hat", "top": "plain"}, '
            '"b": {"left": "bag"}}}')
    with pytest.raises(MappingError, match="section 'a' names target 'top' twice"):
        merge(_cfg([("a", a), ("b", b)], write_mapping(str(tmp_path / "d.json"), text=text), str(tmp_path / "m")))
    with pytest.raises(MappingError, match="not valid JSON"):
        merge(_cfg([("a", a)], write_mapping(str(tmp_path / "y.yaml"), text="attributes: [top]\n"),
                   str(tmp_path / "m")))
    with pytest.raises(MappingError, match="'nope.json' is neither a file nor a shipped mapping"):
        merge(_cfg([("a", a)], "nope.json", str(tmp_path / "m")))


def test_cycles_and_duplicates_are_refused(two_sets, tmp_path):
    a, b, mapping = two_sets
    with pytest.raises(MergeError, match="both hold the data set"):
        merge(_cfg([("a", a), ("b", a)], write_mapping(str(tmp_path / "aa.json"), {
            "attributes": ["top"], "sources": {"a": {"top": "hat"}, "b": {"top": "hat"}}}), str(tmp_path / "m")))
    with pytest.raises(MergeError, match="two inputs are named 'a'"):
        merge(_cfg([("a", a), ("a", b)], mapping, str(tmp_path / "m")))
    manifest_before = open(os.path.join(a, "manifest.json")).read()
    with pytest.raises(MergeError, match="cycle: --output_dir"):
        merge(_cfg([("a", a), ("b", b)], mapping, a))
    assert open(os.path.join(a, "manifest.json")).read() == manifest_before
    # A merge of a and b, merged again with a: a's images would count twice.
    first = str(tmp_path / "ab")
    merge(_cfg([("a", a), ("b", b)], mapping, first))
    again = write_mapping(str(tmp_path / "again.json"), {
        "attributes": ["top"], "sources": {"ab": {"top": "top"}, "a": {"top": "hat"}}})
    with pytest.raises(MergeError, match="'ab' and 'a' both hold the data set in .*A"):
        merge(_cfg([("ab", first), ("a", a)], again, str(tmp_path / "m")))
    with pytest.raises(MergeError, match="cycle"):  # writing over a source of an input
        merge(_cfg([("ab", first)], again, b))
    _assert_nothing_written(str(tmp_path / "m"))


def test_declared_image_sizes_must_agree(two_sets, tmp_path):
    a, b, mapping = two_sets
    for path, size in ((a, [256, 128]), (b, [224, 112])):
        manifest = json.load(open(os.path.join(path, "manifest.json")))
        manifest["image_size"] = size
        json.dump(manifest, open(os.path.join(path, "manifest.json"), "w"))
    out = str(tmp_path / "m")
    with pytest.raises(MergeError, match="different image sizes.*a 256x128, b 224x112"):
        merge(_cfg([("a", a), ("b", b)], mapping, out))
    _assert_nothing_written(out)
    # One declared size and one undeclared merge, without a declared size.
    manifest = json.load(open(os.path.join(b, "manifest.json")))
    del manifest["image_size"]
    json.dump(manifest, open(os.path.join(b, "manifest.json"), "w"))
    assert "image_size" not in merge(_cfg([("a", a), ("b", b)], mapping, out)).manifest
    assert merge(_cfg([("a", a)], mapping, str(tmp_path / "a_only"))).manifest["image_size"] == [256, 128]


def _rewrite_first_record(data_dir, split, change):
    manifest = json.load(open(os.path.join(data_dir, "manifest.json")))
    path = os.path.join(data_dir, manifest["splits"][split]["shards"][0])
    raws = list(tf.data.TFRecordDataset(path).as_numpy_iterator())
    ex = tf.train.Example.FromString(raws[0])
    change(ex.features.feature)
    raws[0] = ex.SerializeToString()
    with tf.io.TFRecordWriter(path) as writer:
        for raw in raws:
            writer.write(raw)


def test_label_value_outside_the_set_is_refused_before_any_rename(two_sets, tmp_path):
    a, b, mapping = two_sets
    out = str(tmp_path / "m")
    merge(_cfg([("a", a), ("b", b)], mapping, out))  # an earlier good output
    before = {n: open(os.path.join(out, n), "rb").read() for n in os.listdir(out)}

    def set_two(features):
        features[example.ATTRIBUTES].int64_list.value[1] = 2

    _rewrite_first_record(b, "test", set_two)
    with pytest.raises(MergeError, match=r"input 'b', test-00000-of-00002.tfrecord record 0: label value 2 is outside"):
        merge(_cfg([("a", a), ("b", b)], mapping, out))
    assert {n: open(os.path.join(out, n), "rb").read() for n in os.listdir(out)} == before


def test_label_count_and_record_count_mismatches(two_sets, tmp_path):
    a, b, mapping = two_sets

    def drop_label(features):
        del features[example.ATTRIBUTES].int64_list.value[-1]

    _rewrite_first_record(a, "train", drop_label)
    with pytest.raises(MergeError, match="1 labels, its manifest names 2 attributes"):
        merge(_cfg([("a", a), ("b", b)], mapping, str(tmp_path / "m")))
    manifest = json.load(open(os.path.join(b, "manifest.json")))
    manifest["splits"]["val"]["num_examples"] = 5
    json.dump(manifest, open(os.path.join(b, "manifest.json"), "w"))
    with pytest.raises(MergeError, match="input 'b', split.s. val: its manifest says 5 records, its shards hold 3"):
        merge(_cfg([("b", b)], mapping, str(tmp_path / "m2")))
    _assert_nothing_written(str(tmp_path / "m2"))


def test_parse_inputs():
    assert parse_inputs(["x=a/b", "c/d"]) == (("x", "a/b"), (None, "c/d"))
    for bad in (["=a"], ["x="], []):
        with pytest.raises(MergeError):
            parse_inputs(bad)


def test_input_name_from_the_manifest(tmp_path):
    a = converted(str(tmp_path / "A"), ["hat", "plain"], {"train": 3}, seed=1)
    mapping = write_mapping(str(tmp_path / "m.json"), {"attributes": ["top"], "sources": {"csv": {"top": "hat"}}})
    m = merge(_cfg(parse_inputs([a]), mapping, str(tmp_path / "m"))).manifest
    assert m["sources"][0]["name"] == "csv"


# ---- alm-merge -------------------------------------------------------------

def _run(capsys, **flag_values):
    flag_values.setdefault("progress", False)
    with flagsaver.flagsaver(**flag_values):
        try:
            merge_cli.main(["alm-merge"])
            code = 0
        except SystemExit as e:
            code = e.code
    return code, capsys.readouterr()


def test_cli_ok(two_sets, tmp_path, capsys):
    a, b, mapping = two_sets
    code, captured = _run(capsys, inputs=[f"a={a}", f"b={b}"], mapping=mapping, output_dir=str(tmp_path / "m"))
    assert code == 0, captured.err
    assert "wrote 23 examples" in captured.out and "a: labels 2 of 4 attributes" in captured.out


@pytest.mark.parametrize("flags_, needle", [
    (dict(inputs=[]), "--inputs is required"),
    (dict(mapping=None), "--mapping is required"),
    (dict(inputs=["a=/no/such/dir"]), "'/no/such/dir' has no manifest.json"),
    (dict(num_shards=2, examples_per_shard=3), "only one of --num_shards"),
    (dict(splits=["x=nope"]), "'nope'"),
    (dict(inputs=["a b=x"]), "bad data set name 'a b'"),
])
def test_cli_bad_input_is_one_line(two_sets, tmp_path, capsys, flags_, needle):
    a, b, mapping = two_sets
    values = dict(inputs=[f"a={a}", f"b={b}"], mapping=mapping, output_dir=str(tmp_path / "m"))
    values.update(flags_)
    code, captured = _run(capsys, **values)
    lines = captured.err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in captured.err
    assert lines[0].startswith("alm-merge: error:") and needle in lines[0], lines[0]
    _assert_nothing_written(str(tmp_path / "m"))


def test_cli_label_value_error_is_one_line(two_sets, tmp_path, capsys):
    a, b, mapping = two_sets
    _rewrite_first_record(a, "train", lambda f: f[example.ATTRIBUTES].int64_list.value.__setitem__(0, 7))
    code, captured = _run(capsys, inputs=[f"a={a}", f"b={b}"], mapping=mapping, output_dir=str(tmp_path / "m"))
    lines = captured.err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "label value 7" in lines[0]
    _assert_nothing_written(str(tmp_path / "m"))
    shutil.rmtree(str(tmp_path / "m"), ignore_errors=True)

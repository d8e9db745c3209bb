"""What a data folder is, checked before it is trusted: the fingerprint that
alm-convert and alm-merge store, the manifest checked before any record is
read, shards that are not the ones the manifest describes, and images two
merge inputs both hold."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest
from absl.testing import flagsaver
from tests.data.merge_helpers import converted, write_mapping

from alm_tf.data import fingerprint, read_manifest, records
from alm_tf.data.merge import MergeConfig, MergeError, merge
from pipelines import merge as merge_cli


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A converted csv data set (train 6, test 3; two shards per split)."""
    return converted(str(tmp_path_factory.mktemp("A")), ["hat", "plain"], {"train": 6, "test": 3}, seed=1)


def _copy(data, tmp_path, name="copy"):
    out = str(tmp_path / name)
    shutil.copytree(data, out)
    records.clear_cache()
    return out


def _write_manifest(data_dir, manifest):
    with open(os.path.join(data_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f)


# ---------------------------------------------------------------- fingerprint

def test_convert_stores_each_shard_hash_and_the_digest(data):
    manifest = read_manifest(data)
    stored = manifest[fingerprint.KEY]
    shards = [s for entry in manifest["splits"].values() for s in entry["shards"]]
    assert sorted(stored["shards"]) == sorted(shards)
    for name in shards:
        raw = open(os.path.join(data, name), "rb").read()
        assert stored["shards"][name] == {"size": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    assert stored["digest"] == fingerprint.manifest_digest(manifest, stored["shards"])
    # The digest changes with a count, an attribute name or a shard's content.
    for change in (lambda m: m["splits"]["train"].update(num_examples=5),
                   lambda m: m.update(attributes=["hat", "other"])):
        other = json.loads(json.dumps(manifest))
        change(other)
        assert fingerprint.manifest_digest(other, stored["shards"]) != stored["digest"]
    changed = dict(stored["shards"], **{shards[0]: {"size": 1, "sha256": "0" * 64}})
    assert fingerprint.manifest_digest(manifest, changed) != stored["digest"]


def test_of_splits_takes_stored_hashes_and_hashes_old_manifests(data, tmp_path):
    manifest = read_manifest(data)
    recorded = fingerprint.of_splits(data, manifest, ["train"])
    assert recorded["manifest_digest"] == manifest[fingerprint.KEY]["digest"]
    old = _copy(data, tmp_path)
    old_manifest = read_manifest(old)
    del old_manifest[fingerprint.KEY]  # written before fingerprints existed
    hashed = fingerprint.of_splits(old, old_manifest, ["train"])
    assert hashed["manifest_digest"] is None and hashed["splits"] == recorded["splits"]
    assert fingerprint.difference(recorded, hashed) is None


def test_a_shard_of_another_size_than_recorded_is_named(data, tmp_path):
    out = _copy(data, tmp_path)
    manifest = read_manifest(out)
    shard = manifest["splits"]["train"]["shards"][0]
    size = os.path.getsize(os.path.join(out, shard))
    manifest[fingerprint.KEY]["shards"][shard]["size"] = size + 1  # the shard was replaced since
    _write_manifest(out, manifest)
    with pytest.raises(records.CorruptRecordsError) as info:
        records.check_split(out, "train", read_manifest(out))
    line = str(info.value)
    assert f"{shard} is {size} bytes where manifest.json records {size + 1} (changed since its conversion)" in line
    assert "\n" not in line


def test_more_records_than_the_manifest_counts_is_refused_even_when_corrupt_is_allowed(data, tmp_path):
    out = _copy(data, tmp_path)
    manifest = read_manifest(out)
    manifest["splits"]["train"]["num_examples"] = 4
    _write_manifest(out, manifest)
    for allow in (False, True):
        records.clear_cache()
        with pytest.raises(records.CorruptRecordsError) as info:
            records.check_split(out, "train", read_manifest(out), allow_corrupt=allow)
        line = str(info.value)
        assert "hold 6 usable records, more than the 4 manifest.json counts" in line, line
        assert "of the 4 records" not in line and "--allow_corrupt_records" not in line


# ---------------------------------------------------- the manifest, before any record

@pytest.mark.parametrize("change, needle", [
    (lambda m, t: m["splits"]["train"]["shards"].__setitem__(0, "/etc/passwd"),
     "lists shard '/etc/passwd', not a path inside the data folder"),
    (lambda m, t: m["splits"]["train"]["shards"].__setitem__(0, "../x.tfrecord"),
     "lists shard '../x.tfrecord', not a path inside the data folder"),
    (lambda m, t: m["splits"]["train"]["shards"].append(m["splits"]["train"]["shards"][0]),
     "split 'train' lists shard 'train-00000-of-00002.tfrecord' twice"),
    (lambda m, t: m["splits"]["test"]["shards"].append(m["splits"]["train"]["shards"][0]),
     "split 'test' lists shard 'train-00000-of-00002.tfrecord', which split 'train' lists too"),
    (lambda m, t: m["splits"]["train"]["positive_ratio"].__setitem__(1, float("nan")),
     "split 'train' has positive_ratio[1] = nan"),
    (lambda m, t: m["splits"]["train"]["positive_ratio"].__setitem__(0, 2.5),
     "split 'train' has positive_ratio[0] = 2.5 (a ratio in [0, 1] expected)"),
    (lambda m, t: m["splits"]["train"]["positive_ratio"].__setitem__(0, -0.1), "positive_ratio[0] = -0.1"),
    (lambda m, t: m["splits"]["train"].update(num_examples=1.5), "split 'train' has num_examples 1.5"),
    (lambda m, t: m["splits"]["train"].update(num_unknown=[0, -1]), "split 'train' has num_unknown [0, -1]"),
    (lambda m, t: m["splits"]["test"].update(num_skipped=-2), "split 'test' has num_skipped -2"),
    (lambda m, t: m["fingerprint"]["shards"].popitem(), "'fingerprint' has no entry for shard 'test-00001-of-00002"),
    (lambda m, t: m["fingerprint"]["shards"]["test-00000-of-00002.tfrecord"].update(sha256="x"),
     "'fingerprint' has {'size': "),
    (lambda m, t: m.update(fingerprint=[]), "'fingerprint' is not {'shards'"),
])
def test_bad_manifest_entries_are_named_before_any_record_is_read(data, tmp_path, monkeypatch, change, needle):
    out = _copy(data, tmp_path)
    manifest = read_manifest(out)
    change(manifest, tmp_path)
    _write_manifest(out, manifest)
    monkeypatch.setattr(records, "_check", lambda *a: pytest.fail("a record was read"))
    with pytest.raises(ValueError) as info:
        read_manifest(out)
    line = str(info.value)
    assert needle in line and "\n" not in line and line.startswith(os.path.join(out, "manifest.json")), line


def test_a_shard_linked_from_outside_the_data_folder_is_refused(data, tmp_path):
    out = _copy(data, tmp_path)
    name = read_manifest(out)["splits"]["train"]["shards"][0]
    moved = shutil.move(os.path.join(out, name), str(tmp_path / name))
    os.symlink(moved, os.path.join(out, name))
    with pytest.raises(ValueError, match=f"lists shard '{name}', which resolves to .*, outside the data folder"):
        read_manifest(out)


# ------------------------------------------------------------ alm-merge duplicates

_MAP = {"attributes": ["top"], "sources": {"a": {"top": "hat"}, "b": {"top": "hat"}}}


def _merge_cli(**flag_values):
    flag_values.setdefault("progress", False)
    with flagsaver.flagsaver(**flag_values):
        try:
            merge_cli.main(["alm-merge"])
            return 0
        except SystemExit as e:
            return e.code


def test_merge_of_a_data_set_and_its_copy_is_refused_by_content(data, tmp_path, capsys):
    copy = _copy(data, tmp_path, "ra_copy")
    mapping = write_mapping(str(tmp_path / "m.json"), _MAP)
    out = str(tmp_path / "merged")
    code = _merge_cli(inputs=[f"a={data}", f"b={copy}"], mapping=mapping, output_dir=out)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert "inputs 'a' and 'b' hold the same image (a's train-00000-of-00002.tfrecord record 0 " in lines[0]
    assert "b's train-00000-of-00002.tfrecord record 0" in lines[0] and "--allow_duplicates" in lines[0]
    assert not os.path.exists(out) and sorted(os.listdir(tmp_path)) == ["m.json", "ra_copy"]


def test_allow_duplicates_keeps_and_counts_them(data, tmp_path):
    copy = _copy(data, tmp_path, "ra_copy")
    mapping = write_mapping(str(tmp_path / "m.json"), _MAP)
    cfg = dict(inputs=(("a", data), ("b", copy)), mapping=mapping, show_progress=False)
    with pytest.raises(MergeError, match="hold the same image"):
        merge(MergeConfig(output_dir=str(tmp_path / "refused"), **cfg))
    result = merge(MergeConfig(output_dir=str(tmp_path / "kept"), allow_duplicates=True, **cfg))
    assert result.num_written == 18
    assert result.manifest["duplicates"] == {"allowed": True, "num_duplicate_images": 9}
    assert fingerprint.KEY in read_manifest(str(tmp_path / "kept"))

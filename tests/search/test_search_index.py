"""alm-index's library: people folders -> Parquet files, idempotent, one model."""

import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
from tests.search import search_folders as sf

from alm_tf import search
from alm_tf.search import layout


def _three(folder, **kw):
    return sf.write_folder(folder, [sf.probs(female=0.9, long_hair=0.8), sf.probs(hat=0.9),
                                    sf.probs(female=0.95, long_hair=0.6, hat=0.7)], **kw)


def test_index_writes_one_parquet_per_video_with_probabilities_and_thumbnails(tmp_path):
    a = _three(str(tmp_path / "a"))
    b = _three(str(tmp_path / "b"), camera="cam2", source="cam2.mp4")
    idx = str(tmp_path / "idx")
    runs = search.index_folders([a, b], idx)
    files = layout.parquet_files(idx)
    assert len(files) == 2 and [r.key for r in runs] == [os.path.basename(f)[:-8] for f in files]
    table = pq.read_table(files[0])
    assert table.num_rows == 3
    assert "female_prob" in table.column_names and "gender" in table.column_names
    assert str(table.schema.field("female_prob").type) == "float"
    np.testing.assert_allclose(table["female_prob"].to_pylist(), [0.9, 0.1, 0.95], atol=1e-6)
    for thumb in table["thumbnail"].to_pylist():
        assert os.path.isfile(os.path.join(idx, thumb))  # relative to the index: it can move
    meta = json.load(open(os.path.join(idx, layout.INDEX_JSON)))
    assert meta["model"]["attributes"] == list(sf.ATTRIBUTES)


def test_reindexing_a_video_replaces_its_rows(tmp_path):
    idx = str(tmp_path / "idx")
    search.index_folders([_three(str(tmp_path / "a"))], idx)
    sf.write_folder(str(tmp_path / "a2"), [sf.probs(boots=0.9)])  # same camera and source
    search.index_folders([str(tmp_path / "a2")], idx)
    files = layout.parquet_files(idx)
    assert len(files) == 1 and pq.read_table(files[0]).num_rows == 1
    thumbs = os.listdir(os.path.join(idx, layout.THUMBNAILS_DIR))
    assert len(thumbs) == 1 and os.listdir(os.path.join(idx, layout.THUMBNAILS_DIR, thumbs[0])) == ["1.jpg"]


def test_index_moves_whole(tmp_path):
    idx = str(tmp_path / "idx")
    search.index_folders([_three(str(tmp_path / "a"))], idx)
    os.rename(idx, str(tmp_path / "moved"))
    frame = search.Index(str(tmp_path / "moved")).search("hat")
    assert all(os.path.isfile(t) for t in frame["thumbnail"])


def test_another_models_attributes_are_refused_and_nothing_is_written(tmp_path):
    idx = str(tmp_path / "idx")
    search.index_folders([_three(str(tmp_path / "a"))], idx)
    before = sorted(os.listdir(os.path.join(idx, layout.TRACKS_DIR)))
    other = sf.model(attributes=("hat", "coat"), groups=[])
    sf.write_folder(str(tmp_path / "o"), [[0.2, 0.7]], camera="x", model_description=other)
    with pytest.raises(search.SearchError, match="other attributes") as e:
        search.index_folders([str(tmp_path / "o")], idx)
    assert "\n" not in str(e.value)
    assert sorted(os.listdir(os.path.join(idx, layout.TRACKS_DIR))) == before


def test_a_folder_without_run_json_is_refused_by_name(tmp_path):
    """Today's alm-predict --tracks output (no run.json, no camera/time columns)."""
    folder = _three(str(tmp_path / "old"), run_json=False)
    with pytest.raises(search.SearchError, match="has no run.json"):
        search.index_folders([folder], str(tmp_path / "idx"))
    assert not os.path.exists(tmp_path / "idx")


def test_a_missing_column_is_named(tmp_path):
    folder = _three(str(tmp_path / "a"))
    path = os.path.join(folder, "tracks.csv")
    lines = open(path).read().replace(",start_time,", ",begin,", 1)
    open(path, "w").write(lines)
    with pytest.raises(search.SearchError, match="'start_time'"):
        search.index_folders([folder], str(tmp_path / "idx"))


def test_a_folder_that_is_not_an_index_is_not_written_into(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("mine")
    with pytest.raises(search.SearchError, match="not an index"):
        search.index_folders([_three(str(tmp_path / "a"))], str(tmp_path / "stuff"))
    assert os.listdir(tmp_path / "stuff") == ["notes.txt"]


def test_per_frame_labels_are_null(tmp_path):
    folder = _three(str(tmp_path / "a"))
    path = os.path.join(folder, "tracks.csv")
    rows = open(path).read().splitlines()
    header = rows[0].split(",")
    k = header.index("boots")
    cells = rows[1].split(",")
    cells[k - 1], cells[k] = "", "0@1-3 1@4-10"
    rows[1] = ",".join(cells)
    open(path, "w").write("\n".join(rows) + "\n")
    search.index_folders([folder], str(tmp_path / "idx"))
    table = pq.read_table(layout.parquet_files(str(tmp_path / "idx"))[0])
    assert table["boots"].to_pylist()[:2] == [None, 0]
    assert table["boots_prob"].to_pylist()[0] is None

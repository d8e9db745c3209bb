"""alm_tf.search: the query grammar and the ranking."""

import math

import pytest
from tests.search import search_folders as sf

from alm_tf import groups as groups_lib
from alm_tf import search

GROUPS = groups_lib.from_description({"groups": sf.GROUPS}, sf.ATTRIBUTES)


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp("q")
    sf.write_folder(str(root / "a"), [
        sf.probs(female=0.9, long_hair=0.8),                 # 1
        sf.probs(hat=0.9),                                   # 2
        sf.probs(female=0.95, long_hair=0.6, hat=0.7),       # 3
        sf.probs(female=0.9, long_hair=0.8),                 # 4: ties with 1, longer
    ], lengths=[10, 10, 10, 30])
    sf.write_folder(str(root / "b"), [sf.probs(female=0.6, long_hair=0.9, backpack=0.9)],
                    camera="cam2", source="cam2.mp4", times=[(100.0, 130.0)])
    search.index_folders([str(root / "a"), str(root / "b")], str(root / "idx"))
    return search.Index(str(root / "idx"))


def test_terms_of_every_kind():
    terms = search.parse_query("female Long_Hair -hat gender=male lower=skirt|shorts hat|glasses", GROUPS)
    assert [t.text for t in terms][0] == "female"
    assert terms[0].literals[0].attribute == "female"             # an attribute of that name
    assert terms[1].literals[0].attribute == "long_hair"          # case-insensitive
    assert terms[2].negated and terms[2].literals[0].attribute == "hat"
    male = terms[3].literals[0]
    assert (male.attribute, male.present, male.group) == ("female", False, "gender")
    assert [lit.attribute for lit in terms[4].literals] == ["skirt", "shorts"]
    assert len(terms[5].literals) == 2
    dark = search.parse_query("dark", GROUPS)[0].literals[0]      # a group value alone
    assert (dark.attribute, dark.present, dark.group) == ("dark_clothing", True, "clothing")


@pytest.mark.parametrize("query, message", [
    ("coat", "unknown attribute 'coat'"), ("gender=robot", "unknown value 'robot' of group 'gender'"),
    ("colour=red", "unknown group 'colour'"), ("", "empty"), ("-", "empty term"),
    ("gender=", "malformed"), ("hat|", "malformed"), ("long", "several groups"),
])
def test_bad_terms_are_one_line_naming_them(query, message):
    with pytest.raises(search.SearchError, match=message) as e:
        search.parse_query(query, GROUPS)
    assert "\n" not in str(e.value)


def test_rank_by_joint_log_probability_ties_by_length(index):
    frame = index.search("female long_hair -hat", top=10)
    assert list(frame.columns[:7]) == list(search.RESULT_COLUMNS)
    assert [(c, t) for c, t in zip(frame["camera"], frame["track_id"])][:3] == [
        ("cam1", 4), ("cam1", 1), ("cam2", 1)]
    assert frame["score"].iloc[0] == pytest.approx(math.log(0.9) + math.log(0.8) + math.log(0.9), abs=1e-5)
    assert list(frame["rank"]) == list(range(1, 6))
    assert frame.attrs["matches"][0] == (True, True, True)


def test_or_inside_a_group_and_absent_terms(index):
    frame = index.search("hat|backpack", top=2)
    assert {(c, t) for c, t in zip(frame["camera"], frame["track_id"])} == {("cam1", 2), ("cam2", 1)}
    p = 1 - (1 - 0.1) * (1 - 0.9)
    assert frame["score"].iloc[0] == pytest.approx(math.log(p), abs=1e-5)


def test_strict_camera_and_time_filters(index):
    strict = index.search("female -hat", strict=True)
    assert sorted(strict["track_id"][strict["camera"] == "cam1"]) == [1, 4]
    assert set(index.search("female", camera="cam2")["camera"]) == {"cam2"}
    late = index.search("female", start="1:00", end="2:00")
    assert list(late["camera"]) == ["cam2"]
    early = index.search("female", start=0, end=2.5)  # tracks 1 (0-1.5) and 2 (2-3.5) overlap
    assert sorted(early["track_id"]) == [1, 2]


@pytest.mark.parametrize("kwargs, message", [
    ({"start": "yesterday"}, "from must be seconds"), ({"start": 5, "end": 2}, "ends before it starts"),
    ({"end": -1}, "time >= 0"), ({"top": 0}, "top must be"),
])
def test_bad_search_arguments(index, kwargs, message):
    with pytest.raises(search.SearchError, match=message):
        index.search("female", **kwargs)


def test_not_an_index_and_an_empty_index(tmp_path):
    with pytest.raises(search.SearchError, match="not an index"):
        search.Index(str(tmp_path))
    with pytest.raises(search.SearchError, match="not found"):
        search.Index(str(tmp_path / "nope"))
    idx = tmp_path / "idx"
    search.index_folders([sf.write_folder(str(tmp_path / "a"), [sf.probs()])], str(idx))
    for f in (idx / "tracks").iterdir():
        f.unlink()
    with pytest.raises(search.SearchError, match="is empty"):
        search.Index(str(idx)).search("female")

"""alm-index and alm-search: results files and one-line errors."""

import importlib
import json
import os

import pandas as pd
import pytest

from alm_tf import search
from pipelines import _cli
from tests.cli_helpers import run_main
from tests.search import search_folders as sf


@pytest.fixture(scope="module")
def idx(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    a = sf.write_folder(str(root / "a"), [sf.probs(female=0.9, long_hair=0.8), sf.probs(hat=0.9),
                                          sf.probs(female=0.7, backpack=0.9)])
    b = sf.write_folder(str(root / "b"), [sf.probs(female=0.8)], camera="cam2", source="cam2.mp4")
    code, out, err = run_main("pipelines.index", [f"--inputs={a},{b}", f"--index={root / 'idx'}"], "alm-index")
    assert code == 0, err
    assert "indexed 4 tracks" in out
    return str(root / "idx")


def test_csv_json_and_html_outputs(idx, tmp_path):
    for ext in ("csv", "json", "html"):
        path = tmp_path / f"r.{ext}"
        code, out, err = run_main("pipelines.search", [f"--index={idx}", "--query=female -hat", "--top=2",
                                                       f"--output={path}"], "alm-search")
        assert code == 0, err
    frame = pd.read_csv(tmp_path / "r.csv")
    assert list(frame.columns[:7]) == ["rank", "camera", "track_id", "start_time", "end_time", "score",
                                       "thumbnail"]
    assert len(frame) == 2 and list(frame["rank"]) == [1, 2]
    records = json.load(open(tmp_path / "r.json"))
    assert [r["track_id"] for r in records] == list(frame["track_id"])
    page = (tmp_path / "r.html").read_text()
    assert page.count("<img") == 2 and "data:image/jpeg;base64," in page and "<script" not in page
    assert "<dd></dd>" not in page and '<span class="none">none</span>' in page  # nothing carried: none


def test_print_without_output(idx):
    code, out, _ = run_main("pipelines.search", [f"--index={idx}", "--query=gender=female", "--camera=cam2"],
                            "alm-search")
    assert code == 0 and "cam2" in out and "cam1" not in out


@pytest.mark.parametrize("args, message", [
    (["--query=coat"], "unknown attribute 'coat'"),
    (["--query=gender=robot"], "unknown value 'robot'"),
    (["--query=female", "--from=noon"], "from must be seconds"),
    (["--query=female", "--from=10", "--to=5"], "ends before it starts"),
    (["--query=female", "--output={tmp}/r.txt"], "output must end in"),
    (["--query=female", "--output={tmp}/no/r.csv"], "folder does not exist"),
    (["--query="], "--query is required"),
])
def test_bad_input_is_one_line_and_writes_nothing(idx, tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, out, err = run_main("pipelines.search", [f"--index={idx}", *args, f"--output={tmp_path}/r.html"]
                              if not any(a.startswith("--output") for a in args)
                              else [f"--index={idx}", *args], "alm-search")
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("alm-search: error: ") and message in err, err
    assert os.listdir(tmp_path) == []


def test_not_an_index_and_empty_index(tmp_path):
    code, _, err = run_main("pipelines.search", [f"--index={tmp_path}", "--query=female"], "alm-search")
    assert code == 1 and "is not an index" in err and err.count("\n") == 1
    folder = sf.write_folder(str(tmp_path / "a"), [sf.probs()])
    search.index_folders([folder], str(tmp_path / "idx"))
    for f in os.listdir(tmp_path / "idx" / "tracks"):
        os.remove(tmp_path / "idx" / "tracks" / f)
    code, _, err = run_main("pipelines.search", [f"--index={tmp_path / 'idx'}", "--query=female"], "alm-search")
    assert code == 1 and "is empty" in err and err.count("\n") == 1


def test_index_refusals_are_one_line(tmp_path):
    old = sf.write_folder(str(tmp_path / "old"), [sf.probs()], run_json=False)
    code, _, err = run_main("pipelines.index", [f"--inputs={old}", f"--index={tmp_path / 'idx'}"], "alm-index")
    assert code == 1 and "has no run.json" in err and err.count("\n") == 1
    assert not os.path.exists(tmp_path / "idx")
    code, _, err = run_main("pipelines.index", [f"--index={tmp_path / 'idx'}"], "alm-index")
    assert code == 1 and "--inputs is required" in err


def test_help_lists_own_flags():
    for module, flag in (("pipelines.index", "--inputs"), ("pipelines.search", "--strict")):
        text = _cli.help_text(module, importlib.import_module(module))
        assert flag in text and "Flags:" in text

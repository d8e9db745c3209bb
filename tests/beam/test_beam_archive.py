"""alm-archive on Beam (DirectRunner in this process; with 2 worker processes in the slow
run, offline): the index rows equal alm-predict --video + alm-index on the same videos; a
broken video is reported and the others finish; bad input is one line."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("apache_beam")
pytest.importorskip("onnxruntime")
pytest.importorskip("av")

from alm_tf.testing import detector_files  # noqa: E402
from alm_tf.testing import mini_model  # noqa: E402
from alm_tf.people import video  # noqa: E402
from alm_tf.artifacts import files  # noqa: E402
from alm_tf.people import synth_frames  # noqa: E402
from tests.cli_helpers import run_main  # noqa: E402

BEAM_ARGS = ["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]
#: One worker in this process: the same pipeline without two workers' TensorFlow start-up.
IN_PROCESS = ["--runner=DirectRunner", "--direct_num_workers=1", "--direct_running_mode=in_memory"]
HEIGHT, WIDTH = 120, 160
PEOPLE = [[40, 20, 90, 110], [100, 10, 150, 100]]  # the boxes the test detector answers on every frame
#: Both paths take the same flags; 3 crops of each 5-box track: the model answers a spread subset.
FOOTAGE = ["--tracker=bytetrack", "--track_min_frames=1", "--crops_per_track=3"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Three short videos (and a broken one), a tiny .keras model and a constant YOLO detector."""
    from PIL import Image

    root = tmp_path_factory.mktemp("archive")
    (root / "videos").mkdir()
    for k in range(3):
        info = synth_frames.generate_frames(synth_frames.FramesConfig(
            str(root / f"seq{k}"), num_frames=5, num_people=2, height=HEIGHT, width=WIDTH, min_person_height=40,
            max_person_height=80, seed=k))
        frames = [np.asarray(Image.open(p).convert("RGB")) for p in info["frames"]]
        video.write_video(str(root / "videos" / f"cam{k}.mp4"), frames, fps=5)
    (root / "videos" / "cam9.mp4").write_bytes(b"not a video")
    table = detector_files.yolo_table(PEOPLE, [[0.9], [0.8]], (HEIGHT, WIDTH))
    model = mini_model.mini_alm_model()
    keras_file = files.save_keras(model, str(root / "tiny.keras"), files.keras_description(
        mini_model.ATTRIBUTES, thresholds=mini_model.THRESHOLDS, image_size=mini_model.IMAGE_SIZE))
    return {"root": root, "model": keras_file, "onnx": detector_files.yolo_onnx(root / "person.onnx", table)}


def _archive(archive, index, videos, *extra, beam_args=BEAM_ARGS):
    return run_main("pipelines.archive", [f"--videos={videos}", f"--model={archive['model']}", f"--index={index}",
                                          f"--detector={archive['onnx']}", *FOOTAGE, *extra],
                    "alm-archive", after_dashes=beam_args)


def _rows(index):
    import pyarrow.parquet as pq

    from alm_tf.search import layout

    return {os.path.basename(p): pq.read_table(p).to_pylist() for p in layout.parquet_files(str(index))}


@pytest.mark.parametrize("beam_args", [IN_PROCESS, pytest.param(BEAM_ARGS, marks=pytest.mark.slow)],
                         ids=["in_process", "two_workers"])
def test_archive_rows_equal_predict_and_index(archive, tmp_path, beam_args):
    videos = archive["root"] / "videos"
    code, out, err = _archive(archive, tmp_path / "idx", str(videos / "*.mp4"), beam_args=beam_args)
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in err, err
    assert lines[0].startswith(f"alm-archive: skipped {videos / 'cam9.mp4'}: ")
    assert lines[1] == "alm-archive: error: 1 of 4 videos could not be tagged (listed above)"
    assert "tagged 3 of 4 videos (6 tracks)" in out
    folders = []
    for k in range(3):  # the local path: alm-predict --video, then alm-index
        folder = tmp_path / f"people{k}"
        code, _, err = run_main("pipelines.predict", [f"--model={archive['model']}", f"--video={videos}/cam{k}.mp4",
                                                      f"--detector={archive['onnx']}", *FOOTAGE, "--noprogress",
                                                      f"--output_dir={folder}"], "alm-predict")
        assert code == 0, err
        folders.append(str(folder))
    code, _, err = run_main("pipelines.index", [f"--inputs={','.join(folders)}", f"--index={tmp_path / 'local'}"],
                            "alm-index")
    assert code == 0, err
    beam, local = _rows(tmp_path / "idx"), _rows(tmp_path / "local")
    assert sorted(beam) == sorted(local) and len(beam) == 3
    for name, rows in local.items():
        assert len(rows) == 2 and len(beam[name]) == 2
        for got, want in zip(beam[name], rows):
            assert got.keys() == want.keys()
            for column, value in want.items():
                if column.endswith("_prob"):
                    assert got[column] == pytest.approx(value, abs=1e-5), column
                else:
                    assert got[column] == value, column
    assert sorted(os.listdir(tmp_path / "idx" / "thumbnails")) == sorted(os.listdir(tmp_path / "local" / "thumbnails"))
    code, out, err = run_main("pipelines.search", [f"--index={tmp_path / 'idx'}", "--query=hat", "--top=10"],
                              "alm-search")
    assert code == 0 and out.count("cam") >= 6, (out, err)


@pytest.mark.parametrize("videos, extra, beam_args, needle", [
    ("nothing/*.mp4", [], BEAM_ARGS, "no video matches --videos="),
    ("videos/cam0.mp4", [], ["--runner=NoSuchRunner"], "unknown Beam runner --runner=NoSuchRunner"),
    ("videos/cam0.mp4", ["--model=BROKEN"], BEAM_ARGS, "broken.keras"),
    ("videos/cam0.mp4", ["--no_video"], BEAM_ARGS, "--no_video"),
])
def test_bad_input_is_one_line(archive, tmp_path, videos, extra, beam_args, needle):
    broken = archive["root"] / "broken.keras"
    broken.write_text("not a model")
    extra = [e.replace("BROKEN", str(broken)) for e in extra]
    index = tmp_path / "idx"
    code, _, err = _archive(archive, index, str(archive["root"] / videos), *extra, beam_args=beam_args)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err
    assert not os.path.exists(index)


def test_fail_on_error_stops_at_the_broken_video(archive, tmp_path):
    videos = archive["root"] / "videos"
    code, _, err = _archive(archive, tmp_path / "idx", str(videos / "cam9.mp4"), "--fail_on_error",
                            beam_args=IN_PROCESS)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"alm-archive: error: {videos / 'cam9.mp4'}: "), err

"""Damaged or mismatched portable files given to alm-evaluate and alm-predict.

Each case ends in one line on stderr and exit 1, and writes no output
folder (nor a hidden staging folder beside it): a truncated .onnx or
.tflite, an OpenVINO model.xml without its model.bin, and a file of one
image size beside a model.json that says another.
"""

from __future__ import annotations

import gc
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from alm_tf.artifacts import runtimes
from alm_tf.serving import portable
from alm_tf.testing import mini_model as ph
from tests.cli_helpers import run_main
from tests.training import train_helpers as h

pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")
pytest.importorskip("ai_edge_litert")

FILES = {"onnx": "model.onnx", "litert": "model.tflite", "openvino": "openvino/model.xml"}


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """The mini ALM model (64x32) as ONNX, LiteRT float32 and OpenVINO with its model.json."""
    out = tmp_path_factory.mktemp("portable_errors") / "export"
    portable.export_portable(ph.mini_alm_model(), ph.ATTRIBUTES, ph.THRESHOLDS, ph.IMAGE_SIZE,
                             str(out), ["onnx", "litert", "openvino"])
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """An image folder and a test split for the two binaries."""
    root = tmp_path_factory.mktemp("portable_inputs")
    (root / "images").mkdir()
    Image.fromarray(ph.images(1, image_size=(80, 40))[0].astype(np.uint8)).save(
        root / "images" / "a.png")
    h.write_dataset(str(root / "data"), splits=(("test", 4),), num_shards=1,
                    attributes=ph.ATTRIBUTES)
    return root


def _copy(export, target, kind):
    """The export's file of `kind` (and the openvino folder's .bin) and model.json in `target`."""
    os.makedirs(target / "openvino", exist_ok=True)
    shutil.copy(export / "model.json", target / "model.json")
    if kind == "openvino":
        for name in ("model.xml", "model.bin"):
            shutil.copy(export / "openvino" / name, target / "openvino" / name)
    else:
        shutil.copy(export / FILES[kind], target / FILES[kind])
    return target / FILES[kind]


def _truncated(export, target, kind):
    """The first third of the file (of the weights' .bin for OpenVINO)."""
    path = _copy(export, target, kind)
    cut = path.with_suffix(".bin") if kind == "openvino" else path
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    return path


def _without_bin(export, target, kind):
    path = _copy(export, target, kind)
    os.remove(path.with_suffix(".bin"))
    return path


def _other_size(export, target, kind):
    path = _copy(export, target, kind)
    meta = json.loads((target / "model.json").read_text())
    meta["image_size"] = [256, 128]
    (target / "model.json").write_text(json.dumps(meta))
    return path


CASES = [
    ("onnx", _truncated, "damaged or truncated"),
    ("litert", _truncated, "damaged or truncated"),
    ("openvino", _truncated, "damaged or truncated"),
    ("openvino", _without_bin, "model.bin' is missing"),
    ("onnx", _other_size, "(?, 64, 32, 3) but"),
    ("litert", _other_size, "(?, 64, 32, 3) but"),
    ("openvino", _other_size, "(?, 64, 32, 3) but"),
]


def _runs(binary, model, inputs, out):
    if binary == "alm-predict":
        return run_main("pipelines.predict", [f"--model={model}", f"--images={inputs / 'images'}",
                                              f"--output_dir={out}", "--noprogress"], binary)
    return run_main("pipelines.evaluate", [f"--model={model}", f"--data_dir={inputs / 'data'}",
                                           "--split=test", f"--output_dir={out}"], binary)


@pytest.mark.parametrize("binary", ["alm-predict", "alm-evaluate"])
@pytest.mark.parametrize("kind, damage, needle", CASES)
def test_bad_portable_file_is_one_line(export, inputs, tmp_path, binary, kind, damage, needle):
    model = damage(export, tmp_path / "model", kind)
    before = sorted(os.listdir(tmp_path))
    code, _, err = _runs(binary, model, inputs, tmp_path / "out")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert lines[0].startswith(f"{binary}: error:") and needle in lines[0], err
    assert str(model) in lines[0]
    assert sorted(os.listdir(tmp_path)) == before  # no output, no staging folder


def test_matching_files_still_open(export):
    """The input-shape check passes the files of their own model.json."""
    for kind, name in FILES.items():
        model = runtimes.open_portable(str(export / name))
        assert model.format == kind and model.image_size == tuple(ph.IMAGE_SIZE)



def test_onnx_optimizers_collect_the_replaced_graph_copies(monkeypatch):
    """alm-export's ONNX step: a garbage collection before each tf2onnx optimizer
    (their graph copies otherwise pile up); the same optimizers, restored after."""
    from tf2onnx import optimizer  # optional dependency: imported only where used

    calls = []
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append(1) or 0)
    original = optimizer._get_optimizers
    with portable._collected_optimizer_copies():
        wrapped = optimizer._get_optimizers()
        assert list(wrapped) == list(original())
        first = next(iter(wrapped.values()))()
        assert type(first) is type(next(iter(original().values()))())
        assert calls == [1]
    assert optimizer._get_optimizers is original

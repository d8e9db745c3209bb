"""alm-convert --engine=beam: the same shards and manifest as the local conversion
(DirectRunner in this process, and with 2 worker processes that import no TensorFlow, offline), and
one-line errors for bad Beam options."""

from __future__ import annotations

import dataclasses
import hashlib
import os

import pytest

pytest.importorskip("apache_beam")

from alm_tf.beam import convert as beam_convert  # noqa: E402
from alm_tf.data import synth  # noqa: E402
from alm_tf.data.convert import convert  # noqa: E402
from alm_tf.data.convert_config import ConvertConfig  # noqa: E402
from tests.cli_helpers import run_main  # noqa: E402
from tests.data import format_sources  # noqa: E402
from absl.testing import flagsaver  # noqa: E402

import pipelines.convert  # noqa: E402,F401  (defines --engine)
from pipelines import _cli  # noqa: E402

BEAM_ARGS = ["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]
#: One worker in this process: the same pipeline without two workers' start-up.
IN_PROCESS = ["--runner=DirectRunner", "--direct_num_workers=1", "--direct_running_mode=in_memory"]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """40 synthetic pedestrians, plus a missing image and a broken one (skipped rows)."""
    root = str(tmp_path_factory.mktemp("synth"))
    synth.generate(synth.SynthConfig(output_dir=root, num_images=40, seed=3))
    with open(os.path.join(root, "images", "broken.jpg"), "wb") as f:
        f.write(b"\xff\xd8 not a jpeg")
    ann = os.path.join(root, "annotations.csv")
    with open(ann, encoding="utf-8") as f:
        lines = f.read().splitlines()
    zeros = ",".join(["0"] * (len(lines[0].split(",")) - 2))
    lines[5:5] = [f"images/missing.jpg,train,{zeros}", f"images/broken.jpg,test,{zeros}"]
    with open(ann, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return root, ann


def _digests(folder):
    return {n: hashlib.sha256(open(os.path.join(folder, n), "rb").read()).hexdigest()
            for n in sorted(os.listdir(folder))}


@pytest.mark.parametrize("beam_args", [IN_PROCESS, BEAM_ARGS],
                         ids=["in_process", "two_workers"])
def test_beam_conversion_equals_the_local_one(synthetic, tmp_path, beam_args):
    root, ann = synthetic
    cfg = ConvertConfig(format="csv", annotations=ann, images_dir=root, output_dir=str(tmp_path / "local"),
                        num_shards=3, workers=1, show_progress=False)
    local = convert(cfg)
    beam = beam_convert.convert(ConvertConfig(**{**cfg.__dict__, "output_dir": str(tmp_path / "beam")}),
                                beam_args)
    assert beam.manifest == local.manifest
    assert local.num_skipped == 2 and local.num_written == 40
    assert _digests(tmp_path / "beam") == _digests(tmp_path / "local")  # shards and manifest, byte for byte


def _convert_args(root, ann, out):
    return ["--format=csv", f"--annotations={ann}", f"--images_dir={root}", f"--output_dir={out}",
            "--noprogress", "--workers=1"]


@pytest.mark.parametrize("engine, extra, needle", [
    ("beam", ["--runner=NoSuchRunner"], "unknown Beam runner --runner=NoSuchRunner"),
    ("beam", ["--direct_num_wrkers=2"], "unknown Beam pipeline option --direct_num_wrkers"),
    ("local", ["--runner=DirectRunner"], "for --engine=beam only"),
])
def test_bad_beam_options_are_one_line(synthetic, tmp_path, engine, extra, needle):
    root, ann = synthetic
    out = tmp_path / "o"
    code, _, err = run_main("pipelines.convert", _convert_args(root, ann, out) + [f"--engine={engine}"],
                            "alm-convert", after_dashes=extra)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err
    assert not os.path.exists(out)


def test_dashes_split_flags_from_beam_options():
    with flagsaver.flagsaver():  # the parsed --engine=beam must not reach later tests
        rest = _cli.parse_flags("alm-convert", ["alm-convert", "--engine=beam", "--", "--runner=DirectRunner"],
                                after_dashes=True)
    assert rest == ["alm-convert", "--runner=DirectRunner"]


@pytest.mark.parametrize("case", format_sources.CASES)
def test_every_format_converts_on_beam_as_locally(tmp_path, case):
    """Each --format's reader on the Beam engine: the same shards and manifest,
    skipped rows (a missing image; alm_list's short label row) included."""
    fmt, annotations, images_dir, schema = format_sources.with_images(case, str(tmp_path / "src"))
    cfg = ConvertConfig(format=fmt, annotations=annotations, images_dir=images_dir, schema=schema,
                        output_dir=str(tmp_path / "local"), num_shards=2, workers=1, show_progress=False)
    local = convert(cfg)
    beam = beam_convert.convert(dataclasses.replace(cfg, output_dir=str(tmp_path / "beam")), IN_PROCESS)
    assert beam.manifest == local.manifest
    assert local.num_written > 0 and local.num_skipped > 0
    assert _digests(tmp_path / "beam") == _digests(tmp_path / "local")

"""alm-convert and alm-synth main() under flagsaver: exit codes, one-line errors."""

from __future__ import annotations

import json
import os

import pytest
from absl import flags
from absl.testing import flagsaver

from alm_tf.data import synth
from alm_tf.data.readers import FORMATS
from pipelines import _cli
from pipelines import convert as convert_cli
from pipelines import synth as synth_cli


def _run(main, capsys, **flag_values):
    flag_values.setdefault("progress", False) if main is convert_cli.main else None
    with flagsaver.flagsaver(**flag_values):
        try:
            main(["prog"])
            code = 0
        except SystemExit as e:
            code = e.code
    return code, capsys.readouterr()


def _one_error_line(captured, *needles):
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("fmt", ["bogus", "PA100K", "onnx"])
def test_format_flag_offers_the_library_formats(tmp_path, csv17, capsys, fmt):
    root, ann = csv17
    code, captured = _run(convert_cli.main, capsys, format=fmt, annotations=ann, images_dir=root,
                          output_dir=str(tmp_path / "o"), workers=1)
    assert code == 1
    _one_error_line(captured, f"--format={fmt}", ", ".join(FORMATS))
    assert not os.path.exists(tmp_path / "o")


def test_convert_ok(tmp_path, csv17, capsys):
    root, ann = csv17
    out = str(tmp_path / "out")
    code, captured = _run(convert_cli.main, capsys, format="csv", annotations=ann, images_dir=root,
                          output_dir=out, num_shards=3, workers=1)
    assert code == 0
    assert "train" in captured.out and "17" in captured.out
    assert json.load(open(os.path.join(out, "manifest.json")))["splits"]["train"]["num_examples"] == 17


@pytest.mark.parametrize(
    "flag_values, needles",
    [
        (dict(images_dir="/no/such/dir"), ("--images_dir", "/no/such/dir")),
        (dict(annotations="/no/such.csv"), ("/no/such.csv",)),
        (dict(schema="rap"), ("--schema",)),
        (dict(splits=["x=nope"]), ("'nope'",)),
        (dict(output_dir=""), ("--output_dir",)),
        (dict(format="alm_list", annotations="test.txt"), ("--schema",)),
        (dict(format="alm_list", schema="rap", annotations="oops"), ("SPLIT=PATH", "'oops'")),
    ],
)
def test_convert_bad_flags_one_line(tmp_path, csv17, capsys, flag_values, needles):
    root, ann = csv17
    values = dict(format="csv", annotations=ann, images_dir=root, output_dir=str(tmp_path / "o"), workers=1)
    values.update(flag_values)
    code, captured = _run(convert_cli.main, capsys, **values)
    assert code == 1
    _one_error_line(captured, *needles)


@pytest.mark.parametrize(
    "cli, arg, needle",
    [
        (convert_cli, "--num_shards=0", "--num_shards=0"),
        (convert_cli, "--partition=9", "--partition=9"),
        (convert_cli, "--workers=x", "--workers=x"),
        (synth_cli, "--num_images=-3", "--num_images=-3"),
        (synth_cli, "--crop=wide", "--crop=wide"),
    ],
)
def test_flag_parse_errors_are_one_line(capsys, cli, arg, needle):
    with flagsaver.flagsaver():
        with pytest.raises(SystemExit) as e:
            _cli.parse_flags("alm-" + cli.__name__.rsplit(".", 1)[1], ["prog", arg])
    assert e.value.code == 1
    _one_error_line(capsys.readouterr(), needle)


def test_convert_strict_bad_input(tmp_path, csv17, capsys):
    root, ann = csv17
    with open(ann, "a") as f:
        f.write("img/missing.png,train,0,1,0\n")
    out = str(tmp_path / "o")
    code, captured = _run(convert_cli.main, capsys, format="csv", annotations=ann, images_dir=root,
                          output_dir=out, strict=True, workers=1)
    assert code == 1 and not os.path.exists(out)
    _one_error_line(captured, "missing file", "img/missing.png")


def test_convert_bad_mat_file(tmp_path, capsys):
    bad = tmp_path / "annotation.mat"
    bad.write_bytes(b"junk")
    code, captured = _run(convert_cli.main, capsys, format="pa100k", annotations=str(bad), images_dir=str(tmp_path),
                          output_dir=f"{tmp_path}-o", workers=1)
    assert code == 1
    _one_error_line(captured, str(bad))


def test_synth_cli(tmp_path, capsys):
    out = str(tmp_path / "s")
    code, captured = _run(synth_cli.main, capsys, output_dir=out, num_images=5, seed=1)
    assert code == 0 and "wrote 5 images" in captured.out
    assert os.path.isfile(os.path.join(out, "annotations.csv"))
    code, captured = _run(synth_cli.main, capsys, output_dir=out, min_image_height=300, max_image_height=100)
    assert code == 1
    _one_error_line(captured, "min_height=300")


def test_synth_crop_flag_offers_the_library_crops():
    assert tuple(flags.FLAGS["crop"].parser.enum_values) == tuple(synth.CROPS)

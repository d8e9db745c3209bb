"""alm_tf.outputs: the output-folder rule every writing binary follows."""

import os
import stat

import pytest

from alm_tf import outputs


def _tree(path):
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs)


def _leftovers(parent):
    return [n for n in os.listdir(parent) if ".tmp-" in n]


def test_new_folder_is_created_only_on_success(tmp_path):
    out = tmp_path / "a" / "out"
    with outputs.replaced_dir(str(out), overwrite=False) as staging:
        assert not out.exists() and os.path.isdir(staging)
        (open(os.path.join(staging, "x.txt"), "w")).write("new")
    assert _tree(out) == ["x.txt"] and not _leftovers(tmp_path / "a")
    # the usual permissions (mkdir + umask), not mkdtemp's 0700
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o777 & ~umask


def test_non_empty_is_refused_without_overwrite(tmp_path):
    (tmp_path / "old.txt").write_text("old")
    with pytest.raises(outputs.OutputError, match=r"is not empty \(pass --overwrite to replace it\)"):
        with outputs.replaced_dir(str(tmp_path), overwrite=False):
            pytest.fail("must not be reached")
    assert (tmp_path / "old.txt").read_text() == "old"


def test_overwrite_replaces_the_whole_folder(tmp_path):
    out = tmp_path / "out"
    (out / "pictures").mkdir(parents=True)
    (out / "pictures" / "stale.png").write_text("old")
    (out / "predictions.csv").write_text("old")
    with outputs.replaced_dir(str(out), overwrite=True) as staging:
        open(os.path.join(staging, "predictions.csv"), "w").write("new")
    assert _tree(out) == ["predictions.csv"] and (out / "predictions.csv").read_text() == "new"
    assert not _leftovers(tmp_path)


def test_failure_leaves_the_old_folder_and_no_staging(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text("old")
    with pytest.raises(RuntimeError, match="half-way"):
        with outputs.replaced_dir(str(out), overwrite=True) as staging:
            open(os.path.join(staging, "metrics.json"), "w").write("half")
            raise RuntimeError("half-way")
    assert _tree(out) == ["metrics.json"] and (out / "metrics.json").read_text() == "old"
    assert not _leftovers(tmp_path)


@pytest.mark.parametrize("inside", ["same", "child"])
def test_a_folder_holding_an_input_is_refused_even_with_overwrite(tmp_path, inside):
    out = tmp_path / "out"
    (out / "images").mkdir(parents=True)
    source = out if inside == "same" else out / "images"
    with pytest.raises(outputs.OutputError, match="holds the input .* would delete it"):
        outputs.check_target(str(out), overwrite=True, inputs=[str(source)])
    outputs.check_target(str(out / "records"), overwrite=False, inputs=[str(out)])  # output inside input: fine


def test_a_file_is_refused(tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    with pytest.raises(outputs.OutputError, match="exists and is not a folder"):
        outputs.check_target(str(path), overwrite=True)


def test_a_symlinked_folder_is_replaced_behind_the_link(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "old").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(real)
    with outputs.replaced_dir(str(link), overwrite=True, flag="--output_dir") as staging:
        open(os.path.join(staging, "new"), "w").write("y")
    assert link.is_symlink() and _tree(real) == ["new"]

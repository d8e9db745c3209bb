"""alm_tf.outputs: the output-folder rule every writing binary follows."""

import os
import stat

import pytest

from alm_tf import outputs
from tests import disk_state


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


def test_a_folder_inside_an_input_is_refused_even_with_overwrite(tmp_path):
    """alm-convert --images_dir=D --output_dir=D/images would delete the images it reads."""
    data = tmp_path / "D"
    (data / "images").mkdir(parents=True)
    (data / "images" / "0.jpg").write_text("jpeg")
    link = tmp_path / "link"
    link.symlink_to(data)
    for source in (data, link):
        with pytest.raises(outputs.OutputError, match="lies inside the input .* choose another place"):
            with outputs.replaced_dir(str(data / "images"), overwrite=True, inputs=[str(source)]):
                pytest.fail("must not be reached")
    assert _tree(data) == ["images/0.jpg"] and not _leftovers(data)


def test_a_file_output_equal_to_its_input_is_refused(tmp_path):
    source = tmp_path / "model.keras"
    source.write_text("weights")
    with pytest.raises(outputs.OutputError, match="--output .* holds the input"):
        outputs.check_apart(str(source), [str(source)], flag="--output")
    outputs.check_apart(str(tmp_path / "other.keras"), [str(source), None, ""], flag="--output")


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


def test_staging_of_dead_runs_is_removed_and_said_live_ones_kept(tmp_path):
    out = tmp_path / "pred"
    out.mkdir()
    (out / "old.csv").write_text("old")
    dead, live = disk_state.dead_pid(), os.getppid()
    for pid in (dead, live):
        (tmp_path / f".pred.tmp-{pid}-0a1b2c3d").mkdir()
        (tmp_path / f".pred.tmp-{pid}-0a1b2c3d" / "half.csv").write_text("half")
    (tmp_path / f".other.tmp-{dead}-0a1b2c3d").mkdir()  # another target's: not ours to judge
    said = []
    with outputs.replaced_dir(str(out), overwrite=True, report=said.append) as staging:
        open(os.path.join(staging, "new.csv"), "w").write("new")
    assert said == [f"removed {tmp_path}/.pred.tmp-{dead}-0a1b2c3d, left by process {dead} "
                    "that is no longer running"]
    assert sorted(_leftovers(tmp_path)) == sorted([f".pred.tmp-{live}-0a1b2c3d", f".other.tmp-{dead}-0a1b2c3d"])
    assert _tree(out) == ["new.csv"]


def test_an_old_output_set_aside_by_a_dead_swap_is_restored(tmp_path):
    dead = disk_state.dead_pid()
    aside = tmp_path / f".conv.tmp-{dead}-00ff00ff.old"
    aside.mkdir()
    (aside / "manifest.json").write_text("old")
    (tmp_path / f".conv.tmp-{dead}-00ff00ff").mkdir()  # the new one, never renamed in
    said = []
    outputs.recover_staging(str(tmp_path / "conv"), report=said.append)
    assert _tree(tmp_path) == ["conv/manifest.json"] and len(said) == 2 and said[0].startswith("restored")


def _die_at(call, monkeypatch_targets):
    """In a forked child: patch the named functions so that call number `call` kills the process."""
    count = [0]

    def wrap(original):
        def fn(*args, **kwargs):
            count[0] += 1
            if count[0] == call:
                os._exit(9)
            return original(*args, **kwargs)
        return fn

    for owner, name in monkeypatch_targets:
        setattr(owner, name, wrap(getattr(owner, name)))


@pytest.mark.parametrize("exchange", [True, False])
@pytest.mark.parametrize("kill_at", [1, 2, 3, 4])
def test_a_kill_at_any_step_of_the_swap_leaves_old_or_new_then_nothing(tmp_path, exchange, kill_at):
    """A real kill (os._exit in a forked child) at each file-system step of the swap."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "v").write_text("old")
    pid = os.fork()
    if pid == 0:  # the child: no exception handler or finally block runs after os._exit
        try:
            if not exchange:
                outputs._exchange = lambda a, b: False
            _die_at(kill_at, [(outputs.os, "rename"), (outputs, "_exchange"), (outputs, "_remove"),
                              (outputs.shutil, "rmtree")])
            with outputs.replaced_dir(str(out), overwrite=True, report=lambda line: None) as staging:
                open(os.path.join(staging, "v"), "w").write("new")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    said = []
    outputs.recover_staging(str(out), report=said.append)  # what the next command does first
    assert (out / "v").read_text() in ("old", "new") and _tree(out) == ["v"]
    assert not _leftovers(tmp_path)


def test_a_failure_removes_the_parents_it_created(tmp_path):
    with pytest.raises(OSError):
        with outputs.replaced_dir(str(tmp_path / "a" / "b" / "out"), overwrite=False):
            raise OSError(28, "No space left on device")
    assert os.listdir(tmp_path) == []


def test_stale_model_dir_temporaries_are_removed(tmp_path):
    dead = disk_state.dead_pid()
    (tmp_path / "checkpoints" / "ckpt-3_temp").mkdir(parents=True)
    (tmp_path / "checkpoints" / "ckpt-2.index").write_text("x")
    (tmp_path / f".tmp-{dead}-0011aabb.keras").write_text("")
    (tmp_path / f".tmp-{os.getpid()}-0011aabb.keras").write_text("")  # a live writer's
    (tmp_path / ".tmp-ab_cd123.keras").write_text("")  # an older mkstemp name, empty
    (tmp_path / "final.keras").write_text("x")
    said = []
    outputs.remove_stale_temporaries(str(tmp_path), report=said.append)
    assert _tree(tmp_path) == sorted([f".tmp-{os.getpid()}-0011aabb.keras", "checkpoints/ckpt-2.index",
                                      "final.keras"])
    assert len(said) == 3 and all(line.startswith("removed ") for line in said)


def test_outside_a_model_dir_only_dead_pids_temporaries_go(tmp_path):
    dead = disk_state.dead_pid()
    (tmp_path / "checkpoints" / "ckpt-3_temp").mkdir(parents=True)
    (tmp_path / f".tmp-{dead}-0011aabb.keras").write_text("")
    (tmp_path / ".tmp-ab_cd123.keras").write_text("")  # whose, without a pid, is unknown here
    said = []
    outputs.remove_stale_temporaries(str(tmp_path), report=said.append, model_dir=False)
    assert os.listdir(tmp_path / "checkpoints") == ["ckpt-3_temp"] and len(said) == 1
    assert sorted(os.listdir(tmp_path)) == [".tmp-ab_cd123.keras", "checkpoints"]

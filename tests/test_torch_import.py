"""alm_tf.torch_import and the alm-import-torch command line."""

import os
import pickle
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import keras  # noqa: E402
from absl import flags  # noqa: E402
from absl.testing import flagsaver  # noqa: E402

import alm_tf  # noqa: E402
from alm_tf import artifacts, torch_import  # noqa: E402
from alm_tf.data import schemas  # noqa: E402
from alm_tf.torch_import import CheckpointError  # noqa: E402
from pipelines import import_torch  # noqa: E402
from alm_tf.testing import torch_reference as ref  # noqa: E402

M = 3
SIZE = (64, 32)  # the smallest input the official network accepts


def numpy_state(model):
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def snapshot(model):
    return {v.path: keras.ops.convert_to_numpy(v).copy()
            for v in model.weights}


def keras_outputs(model, images_nchw):
    outputs = model(images_nchw.permute(0, 2, 3, 1).numpy(), training=False)
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}


def assert_matches_torch(outputs, torch_logits, tol=1e-4):
    for name, expected in zip(("level1", "level2", "level3", "global"),
                              torch_logits):
        expected = expected.numpy()
        err = np.abs(outputs[name] - expected).max() / np.abs(expected).max()
        assert err <= tol, (name, err)


@pytest.fixture(scope="module")
def torch_model():
    return ref.randomize_(ref.ALMNet(M), seed=11)


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, *SIZE, generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="module")
def _built_keras_model():
    """One BN-Inception ALM model per module and its initial weights."""
    model = alm_tf.build_model(M, input_shape=(*SIZE, 3))
    return model, model.get_weights()


@pytest.fixture()
def keras_model(_built_keras_model):
    """The module's model, back at its initial weights (every variable,
    moving statistics included) for each test: a fresh model without the
    build."""
    model, start = _built_keras_model
    model.set_weights(start)
    return model


# ------------------------------------------------------------ reading files


@pytest.mark.parametrize("layout", ["official", "bare_module", "bare"])
def test_load_state_dict_accepts_official_and_bare_layouts(
        layout, torch_model, tmp_path):
    if layout == "official":
        obj = ref.official_checkpoint(torch_model)
    elif layout == "bare_module":
        obj = ref.official_checkpoint(torch_model)["state_dict"]
    else:
        obj = torch_model.state_dict()
    path = tmp_path / "ckpt.pth.tar"
    torch.save(obj, path)
    state = torch_import.load_state_dict(path)
    assert list(state) == list(torch_model.state_dict())
    assert torch_import.checkpoint_kind(state) == "alm"
    np.testing.assert_array_equal(
        state["finalfc.weight"], torch_model.finalfc.weight.detach().numpy())


def test_legacy_format_with_numpy_scalars_loads(torch_model, tmp_path):
    """As a 2019 training script saved it: pre-zip format, numpy-1 scalar."""
    ckpt = ref.official_checkpoint(torch_model, best_accu=np.float64(0.8186))
    path = tmp_path / "legacy.pth.tar"
    torch.save(ckpt, path, _use_new_zipfile_serialization=False)
    raw = path.read_bytes()
    assert raw.count(b"numpy._core.multiarray") == 1  # numpy 2 spelling
    path.write_bytes(raw.replace(b"numpy._core.multiarray",
                                 b"numpy.core.multiarray"))
    state = torch_import.load_state_dict(path)
    assert list(state) == list(torch_model.state_dict())


class _Payload:
    """Unpickling this would run code: the loader must refuse it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _bad_files(tmp_path):
    random_bytes = tmp_path / "random.pth"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(4096))
    payload = tmp_path / "payload.pth"
    marker = tmp_path / "code_was_run"
    with open(payload, "wb") as f:
        pickle.dump({"state_dict": {"x": _Payload(str(marker))}}, f)
    torch_payload = tmp_path / "torch_payload.pth"
    torch.save({"state_dict": {"x": _Payload(str(marker))}}, torch_payload)
    not_tensors = tmp_path / "not_tensors.pth"
    torch.save({"state_dict": {"a": 1}}, not_tensors)
    a_list = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], a_list)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    if marker.exists():  # torch.save itself must not have run it
        marker.unlink()
    return [random_bytes, payload, torch_payload, not_tensors, a_list,
            empty], marker


def test_bad_files_raise_one_line_errors_and_run_no_code(tmp_path):
    paths, marker = _bad_files(tmp_path)
    for path in paths:
        with pytest.raises(CheckpointError) as info:
            torch_import.load_state_dict(path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message, message
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="not found"):
        torch_import.load_state_dict(tmp_path / "missing.pth")


# ------------------------------------------------------------- assignment


def test_backbone_import_changes_only_backbone_weights(torch_model,
                                                       keras_model, images):
    backbone = ref.backbone_state_dict(torch_model)
    assert torch_import.checkpoint_kind(backbone) == "backbone"
    backbone = {k: v.numpy() for k, v in backbone.items()}
    backbone_layers = {k.rsplit(".", 1)[0] for k in backbone
                       if not k.startswith("last_linear")}
    before = snapshot(keras_model)
    assert torch_import.import_state_dict(keras_model, backbone) == "backbone"
    after = snapshot(keras_model)
    changed = {p for p in before if not np.array_equal(before[p], after[p])}
    touched = {p for p in before if p.split("/")[0] in backbone_layers}
    assert changed and changed <= touched
    # Every backbone variable now holds the torch value (most change).
    assert len(changed) > 0.9 * len(touched)
    # The backbone computes what the reference's backbone computes.
    tap = keras.Model(keras_model.inputs,
                      keras_model.get_layer("inception_5b_output").output)
    got = keras.ops.convert_to_numpy(
        tap(images.permute(0, 2, 3, 1).numpy(), training=False))
    with torch.no_grad():
        expected = torch_model.main_branch(images)["5b"].permute(0, 2, 3, 1)
    expected = expected.numpy()
    assert np.abs(got - expected).max() / np.abs(expected).max() <= 1e-4


def test_backbone_with_1xC_batch_norm_vectors_imports(torch_model,
                                                      keras_model):
    """Some ImageNet BN-Inception files store BN vectors as (1, C)."""
    backbone = {k: v.numpy() for k, v in
                ref.backbone_state_dict(torch_model).items()}
    for key in list(backbone):
        if "_bn." in key and backbone[key].ndim == 1:
            backbone[key] = backbone[key][None]
    torch_import.import_state_dict(keras_model, backbone)
    bn = keras_model.get_layer("inception_4d_3x3_bn")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(bn.moving_variance),
        torch_model.main_branch.inception_4d_3x3_bn.running_var.numpy())


def test_num_batches_tracked_is_optional(torch_model, keras_model, images):
    state = {k: v for k, v in numpy_state(torch_model).items()
             if not k.endswith("num_batches_tracked")}
    torch_import.import_state_dict(keras_model, state)
    with torch.no_grad():
        expected = torch_model(images)
    assert_matches_torch(keras_outputs(keras_model, images), expected)


@pytest.mark.parametrize("edit,pattern", [
    ("missing", r"lacks tensor 'st_4d.stn_list.1.weight'"),
    ("extra", r"has tensor 'st_4d.stn_list.3.weight' that the model does "
              r"not have"),
    ("misshaped", r"tensor 'main_branch.inception_4a_3x3.weight' has shape "
                  r"\(96, 64, 3, 1\); the model needs \(96, 64, 3, 3\)"),
    ("attributes", r"checkpoint has 4 attributes \(finalfc.weight "
                   r"\(4, 1024\)\); the model has 3"),
    ("unknown", r"unrecognized checkpoint"),
])
def test_mismatched_state_dict_errors_name_the_tensor(
        edit, pattern, torch_model, keras_model):
    state = numpy_state(torch_model)
    if edit == "missing":
        del state["st_4d.stn_list.1.weight"]
    elif edit == "extra":
        state["st_4d.stn_list.3.weight"] = state["st_4d.stn_list.2.weight"]
    elif edit == "misshaped":
        key = "main_branch.inception_4a_3x3.weight"
        state[key] = state[key][..., :1]
    elif edit == "attributes":
        state = numpy_state(ref.ALMNet(M + 1))
    else:
        state = {"fc.weight": np.zeros((2, 2), np.float32)}
    before = snapshot(keras_model)
    with pytest.raises(CheckpointError, match=pattern) as info:
        torch_import.import_state_dict(keras_model, state)
    assert "\n" not in str(info.value)
    after = snapshot(keras_model)
    assert all(np.array_equal(before[p], after[p]) for p in before)


def test_backbone_dict_with_missing_tensor_is_refused(torch_model,
                                                      keras_model):
    backbone = {k: v.numpy() for k, v in
                ref.backbone_state_dict(torch_model).items()}
    del backbone["inception_5b_pool_proj_bn.running_var"]
    with pytest.raises(CheckpointError,
                       match="lacks tensor 'inception_5b_pool_proj_bn"):
        torch_import.import_state_dict(keras_model, backbone)


def test_save_keras_is_atomic_and_refuses_overwrite(keras_model, tmp_path):
    path = tmp_path / "sub" / "m.keras"
    names = [f"a{m}" for m in range(keras_model.output["logits"].shape[-1])]
    artifacts.save_keras(keras_model, str(path), artifacts.keras_description(names),
                         overwrite=False)
    assert path.exists()
    assert sorted(os.listdir(path.parent)) == ["m.keras"]  # no temp left
    assert artifacts.read_keras_description(str(path))["attributes"] == names
    with pytest.raises(FileExistsError):
        artifacts.save_keras(keras_model, str(path), {}, overwrite=False)
    with pytest.raises(ValueError, match="must end with '.keras'"):
        artifacts.save_keras(keras_model, str(tmp_path / "m.h5"), {})


# --------------------------------------------------------------------- CLI


@pytest.fixture()
def parsed_flags():
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    with flagsaver.flagsaver():
        yield


def _cli(capsys, **flag_values):
    with flagsaver.flagsaver(**flag_values):
        code = import_torch.main(["alm-import-torch"])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_imports_official_checkpoint(parsed_flags, capsys, tmp_path,
                                         images):
    names = schemas.get_schema("pa100k").attributes
    torch_model = ref.randomize_(ref.ALMNet(len(names)), seed=5)
    checkpoint = tmp_path / "pa100k_best.pth.tar"
    torch.save(ref.official_checkpoint(torch_model), checkpoint)
    output = tmp_path / "alm_pa100k.keras"
    code, out, err = _cli(capsys, checkpoint=str(checkpoint),
                          dataset="pa100k", output=str(output),
                          image_height=SIZE[0], image_width=SIZE[1])
    assert code == 0, err
    assert "M=26" in out and str(output) in out

    described = artifacts.load(str(output))  # the file carries its names and size
    assert described.attributes == tuple(names) and described.image_size == SIZE
    assert not output.with_suffix(".attributes.txt").exists()
    loaded = keras.saving.load_model(output)
    with torch.no_grad():
        expected = torch_model(images)
    assert_matches_torch(keras_outputs(loaded, images), expected)
    # The same file again: refused without --overwrite, nothing changed.
    mtime = output.stat().st_mtime_ns
    code, _, err = _cli(capsys, checkpoint=str(checkpoint), dataset="pa100k",
                        output=str(output), image_height=SIZE[0],
                        image_width=SIZE[1])
    assert code == 1 and "--overwrite" in err and err.count("\n") == 1
    assert output.stat().st_mtime_ns == mtime
    umask = os.umask(0)
    os.umask(umask)
    assert oct(output.stat().st_mode & 0o777) == oct(0o666 & ~umask)  # the user's umask, not 0600


def test_cli_never_writes_over_its_checkpoint(parsed_flags, capsys, tmp_path):
    checkpoint = tmp_path / "weights.keras"
    checkpoint.write_bytes(b"the only copy")
    link = tmp_path / "link.keras"
    link.symlink_to(checkpoint)
    for output in (checkpoint, link):
        code, _, err = _cli(capsys, checkpoint=str(checkpoint), dataset="pa100k", output=str(output),
                            overwrite=True)
        assert code == 1 and err.count("\n") == 1 and "--output" in err and "holds the input" in err, err
    assert checkpoint.read_bytes() == b"the only copy"
    assert sorted(os.listdir(tmp_path)) == ["link.keras", "weights.keras"]


def test_cli_imports_backbone_with_custom_attributes(parsed_flags, capsys,
                                                     torch_model, tmp_path):
    checkpoint = tmp_path / "bn_inception.pth"
    torch.save(ref.backbone_state_dict(torch_model), checkpoint)
    output = tmp_path / "init.keras"
    code, out, err = _cli(capsys, checkpoint=str(checkpoint),
                          dataset="custom", num_attributes=4,
                          output=str(output), image_height=SIZE[0],
                          image_width=SIZE[1])
    assert code == 0, err
    assert "backbone" in out
    loaded = keras.saving.load_model(output)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded.get_layer("conv1_7x7_s2").kernel),
        torch_model.main_branch.conv1_7x7_s2.weight.detach().numpy()
        .transpose(2, 3, 1, 0))
    assert loaded.outputs and loaded.get_layer("finalfc").units == 4


def test_cli_bad_inputs_give_one_line_errors(parsed_flags, capsys,
                                             torch_model, tmp_path):
    paths, marker = _bad_files(tmp_path)
    good = tmp_path / "good.pth"
    torch.save(ref.official_checkpoint(torch_model), good)
    output = tmp_path / "out.keras"
    size = dict(image_height=SIZE[0], image_width=SIZE[1])
    cases = [(dict(checkpoint=str(p), dataset="rap"), str(p)) for p in paths]
    cases += [
        (dict(checkpoint=str(good), dataset="rap"),
         "checkpoint has 3 attributes"),
        (dict(checkpoint=str(good), dataset="custom"), "--num_attributes"),
        (dict(checkpoint=str(good), dataset="rap", num_attributes=3),
         "only for --dataset=custom"),
        (dict(checkpoint=str(tmp_path / "nope.pth"), dataset="rap"),
         "not found"),
        (dict(checkpoint=str(good), dataset="custom", num_attributes=3,
              image_height=64, image_width=48), "Received: --image_width=48"),
    ]
    for extra, expected in cases:
        values = {**size, **extra}
        code, out, err = _cli(capsys, output=str(output), **values)
        assert code == 1, (extra, out)
        assert err.startswith("alm-import-torch: error: "), err
        assert err.count("\n") == 1 and expected in err, err
        assert not output.exists()
    code, _, err = _cli(capsys, checkpoint=str(good), dataset="custom",
                        num_attributes=3, output=str(tmp_path / "x.h5"),
                        **size)
    assert code == 1 and "must end with '.keras'" in err
    code, _, err = _cli(capsys, checkpoint=str(good), dataset="custom",
                        num_attributes=3, output=str(good / "x.keras"),
                        **size)
    assert code == 1 and "lies inside the input" in err and err.count("\n") == 1, err
    code, _, err = _cli(capsys, checkpoint=str(good), dataset="custom",
                        num_attributes=3, output=str(paths[0] / "x.keras"),
                        **size)  # under a file: the model is built, the write fails
    assert code == 1 and "cannot write" in err and err.count("\n") == 1, err
    assert not marker.exists()
    assert sorted(os.listdir(tmp_path)) == sorted(
        [p.name for p in paths] + ["good.pth"])


def test_cli_without_torch_names_the_extra(parsed_flags, capsys, tmp_path, monkeypatch):
    """`[dev]` alone has no PyTorch: one line naming the `torch` extra, nothing written."""
    checkpoint = tmp_path / "c.pth"
    checkpoint.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    code, _, err = _cli(capsys, checkpoint=str(checkpoint), dataset="pa100k",
                        output=str(tmp_path / "o.keras"), image_height=SIZE[0],
                        image_width=SIZE[1])
    assert code == 1 and err.count("\n") == 1
    assert "'torch' extra" in err and "'[dev]' alone does not" in err
    assert not (tmp_path / "o.keras").exists()

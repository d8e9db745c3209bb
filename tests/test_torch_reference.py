"""Checks that the PyTorch reference is the official network.

Key names, shapes and parameter counts come from the official checkpoint
(`shared/reference/official_checkpoint_keys.tsv`) and the measured counts in
OFFICIAL_IMPLEMENTATION.md.
"""

import ast
import hashlib
import pathlib

import pytest

torch = pytest.importorskip("torch")

from alm_tf.testing import torch_reference as ref  # noqa: E402  (after the importorskip)
from torch.nn import functional as F  # noqa: E402

KEYS_TSV = (pathlib.Path(__file__).resolve().parents[2] / "shared" /
            "reference" / "official_checkpoint_keys.tsv")
# sha256 of official_checkpoint_keys.tsv (M = 51): "key<TAB>(shape)" lines.
# Pinned so that the check also runs where the shared folder is absent.
KEYS_TSV_SHA256 = (
    "0b251ea77aadc3203566b6f2cfc457230dcf294d0c85d21fe45f7a5499e705a0")


def official_keys():
    if not KEYS_TSV.exists():
        pytest.skip(f"{KEYS_TSV} not available")
    rows = []
    for line in KEYS_TSV.read_text().splitlines():
        key, shape = line.split("\t")
        rows.append((key, tuple(ast.literal_eval(shape))))
    return rows


@pytest.fixture(scope="module")
def model51():
    return ref.ALMNet(51).eval()


def test_state_dict_equals_official_keys_and_shapes(model51):
    mine = [(k, tuple(v.shape)) for k, v in model51.state_dict().items()]
    expected = official_keys()
    assert len(mine) == len(expected) == 1715
    assert dict(mine) == dict(expected)
    assert mine == expected  # same order too


def test_state_dict_digest_equals_pinned_official_digest(model51):
    text = "".join(f"{k}\t{tuple(v.shape)}\n"
                   for k, v in model51.state_dict().items())
    assert hashlib.sha256(text.encode()).hexdigest() == KEYS_TSV_SHA256


def test_parameter_counts(model51):
    assert ref.count_parameters(model51) == 17_147_760
    assert ref.count_parameters(model51.main_branch) == 10_270_240
    per_level = [ref.count_parameters(b) for b in
                 (model51.st_3b, model51.st_4d, model51.st_5b)]
    assert per_level == [3_997_839, 1_829_727, 497_199]
    laterals = sum(ref.count_parameters(getattr(model51, f"latlayer_{t}"))
                   for t in ("3b", "4d", "5b"))
    assert laterals == 500_480
    buffers = sum(b.numel() for n, b in model51.state_dict().items()
                  if n.endswith(("running_mean", "running_var")))
    assert buffers == 20_032


@pytest.mark.parametrize("num_attributes,height,width,taps", [
    (51, 64, 32, {"3b": (8, 4), "4d": (4, 2), "5b": (2, 1)}),
    (3, 256, 128, {"3b": (32, 16), "4d": (16, 8), "5b": (8, 4)}),
])
def test_output_shapes(num_attributes, height, width, taps):
    model = ref.ALMNet(num_attributes).eval()
    x = torch.randn(2, 3, height, width)
    with torch.no_grad():
        logits, params = model(x, return_params=True)
        inter = model.intermediates(x)
    assert len(logits) == 4 and len(params) == 3
    for t in logits:
        assert t.shape == (2, num_attributes)
    for p in params:
        assert p.shape == (2, num_attributes, 4)
    for tap, hw in taps.items():
        assert inter["backbone"][tap].shape == (2, ref.TAP_CHANNELS[tap], *hw)
    assert inter["x1"].shape == (2, 768, *taps["3b"])
    assert inter["x2"].shape == (2, 512, *taps["4d"])
    assert inter["x3"].shape == (2, 256, *taps["5b"])


def test_stem_uses_ceil_mode_pools():
    model = ref.ALMNet(1).eval()
    with torch.no_grad():
        feats = model.main_branch(torch.randn(1, 3, 256, 128))
    # 128x64 -> 64x32 -> 32x16 (floor mode would give 63x31 -> 31x15).
    assert feats["stem"].shape[2:] == (32, 16)


def test_odd_pyramid_sizes_fail_like_the_official_code():
    model = ref.ALMNet(1).eval()
    with torch.no_grad(), pytest.raises(RuntimeError):
        model(torch.randn(1, 3, 288, 144))


def test_alm_resampling_matches_documented_coordinates():
    """grid_sample == the formula spelled out in OFFICIAL_IMPLEMENTATION.md."""
    torch.manual_seed(0)
    n, c, h, w = 2, 3, 5, 4
    x = torch.randn(n, c, h, w, dtype=torch.float64)
    sx, sy = torch.tensor([0.4, 0.9]), torch.tensor([0.7, 0.3])
    tx, ty = torch.tensor([-0.6, 0.2]), torch.tensor([0.5, -0.8])
    zero = torch.zeros(n)
    theta = torch.stack([torch.stack([sx, zero, tx], 1),
                         torch.stack([zero, sy, ty], 1)], 1).double()
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    got = F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                        align_corners=False)

    def weights(size, s, t):
        # (out, in) interpolation matrix for one axis, border-clamped.
        out = torch.zeros(size, size, dtype=torch.float64)
        for j in range(size):
            coord = float(s) * ((2 * j + 1) / size - 1) + float(t)
            pix = min(max(((coord + 1) * size - 1) / 2, 0.0), size - 1.0)
            lo = int(pix // 1)
            frac = pix - lo
            out[j, lo] += 1 - frac
            if frac > 0:
                out[j, lo + 1] += frac
        return out

    for i in range(n):
        wy, wx = weights(h, sy[i], ty[i]), weights(w, sx[i], tx[i])
        expected = torch.einsum("ph,chw,qw->cpq", wy, x[i], wx)
        torch.testing.assert_close(got[i], expected, rtol=0, atol=1e-12)


def test_randomize_gives_nontrivial_boxes_and_bn_stats():
    model = ref.randomize_(ref.ALMNet(4), seed=3)
    bn = model.main_branch.inception_4d_3x3_bn
    assert not torch.allclose(bn.running_mean,
                              torch.zeros_like(bn.running_mean))
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    with torch.no_grad():
        logits, params = model(torch.randn(2, 3, 64, 32), return_params=True)
    for t in logits:
        assert torch.isfinite(t).all()
    for p in params:
        assert ((p[..., :2] > 0.2) & (p[..., :2] < 0.95)).all()
        assert (p[..., 2:].abs() > 0.05).all()


def test_backbone_state_dict_helper(model51):
    state = ref.backbone_state_dict(model51)
    expected = {k[len("main_branch."):]: tuple(v.shape)
                for k, v in model51.state_dict().items()
                if k.startswith("main_branch.")}
    expected["last_linear.weight"] = (1000, 1024)
    expected["last_linear.bias"] = (1000,)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected


def test_official_checkpoint_helper_uses_module_prefix():
    model = ref.ALMNet(2)
    ckpt = ref.official_checkpoint(model)
    assert set(ckpt) == {"epoch", "best_accu", "state_dict"}
    assert all(k.startswith("module.") for k in ckpt["state_dict"])
    assert len(ckpt["state_dict"]) == len(model.state_dict())

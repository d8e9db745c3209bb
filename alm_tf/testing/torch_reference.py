"""Pure-PyTorch reference of the official ALM network (ICCV 2019).

Written from the facts in `shared/reference/OFFICIAL_IMPLEMENTATION.md` and
the parameter names and shapes in `official_checkpoint_keys.tsv`, not copied
from the official code. Its `state_dict()` keys are exactly the official
checkpoint's (without the DataParallel `module.` prefix), so the importer and
the parity tests can run on checkpoints that look like the released ones.

Faithful details (each one a way a port can silently go wrong):
- BN-Inception: every conv has a bias, then BatchNorm (eps 1e-5) and ReLU;
  every pool uses ceil mode; the inception avg pools are 3x3/1 pad 1 and
  count the padded zeros; 3c and 4e reduce with a 3x3/2 max pool and no
  projection; 5b's pool branch is a 3x3/1 pad 1 MAX pool then a projection.
- Pyramid: laterals to 256 channels, bilinear x2 upsampling with
  align_corners=False, concat order [upsampled higher level, lateral].
- ALM: per attribute in a Python loop, SE attention with a residual,
  Linear(C -> 4) -> (sigmoid sx, sigmoid sy, tanh tx, tanh ty), affine_grid
  and grid_sample (bilinear, border padding, align_corners=False) to the same
  H x W, average pool, Linear(C -> 1).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

BN_EPS = 1e-5
ALM_REDUCTION = 16
PYRAMID_CHANNELS = 256
TAP_CHANNELS = {"3b": 320, "4d": 608, "5b": 1024}

# (block, in_channels, 1x1, (3x3 reduce, 3x3), (double reduce, double 3x3),
#  pool kind, pool projection). pool kind: "avg" (3x3/1 pad 1, counting
# padded zeros) + projection, "max1" (3x3/1 pad 1 max) + projection, or
# "max2" (3x3/2 ceil-mode max, no projection: the reduction blocks, whose
# 3x3 and second double-3x3 convs have stride 2).
INCEPTION_BLOCKS = (
    ("3a", 192, 64, (64, 64), (64, 96), "avg", 32),
    ("3b", 256, 64, (64, 96), (64, 96), "avg", 64),
    ("3c", 320, None, (128, 160), (64, 96), "max2", None),
    ("4a", 576, 224, (64, 96), (96, 128), "avg", 128),
    ("4b", 576, 192, (96, 128), (96, 128), "avg", 128),
    ("4c", 576, 160, (128, 160), (128, 160), "avg", 128),
    ("4d", 608, 96, (128, 192), (160, 192), "avg", 128),
    ("4e", 608, None, (128, 192), (192, 256), "max2", None),
    ("5a", 1056, 352, (192, 320), (160, 224), "avg", 128),
    ("5b", 1024, 352, (192, 320), (192, 224), "max1", 128),
)


class BNInception(nn.Module):
    """BN-Inception backbone; forward returns the 3b, 4d and 5b maps.

    Attribute names make `state_dict()` keys equal the ImageNet BN-Inception
    checkpoint's (without its `last_linear`).
    """

    def __init__(self) -> None:
        super().__init__()
        self._conv("conv1_7x7_s2", 3, 64, 7, stride=2, padding=3)
        self._conv("conv2_3x3_reduce", 64, 64, 1)
        self._conv("conv2_3x3", 64, 192, 3, padding=1)
        for name, cin, c1, (r3, c3), (rd, cd), pool, proj in INCEPTION_BLOCKS:
            stride = 2 if pool == "max2" else 1
            prefix = f"inception_{name}"
            if c1 is not None:
                self._conv(f"{prefix}_1x1", cin, c1, 1)
            self._conv(f"{prefix}_3x3_reduce", cin, r3, 1)
            self._conv(f"{prefix}_3x3", r3, c3, 3, stride=stride, padding=1)
            self._conv(f"{prefix}_double_3x3_reduce", cin, rd, 1)
            self._conv(f"{prefix}_double_3x3_1", rd, cd, 3, padding=1)
            self._conv(f"{prefix}_double_3x3_2", cd, cd, 3, stride=stride,
                       padding=1)
            if proj is not None:
                self._conv(f"{prefix}_pool_proj", cin, proj, 1)

    def _conv(self, name, cin, cout, kernel, stride=1, padding=0):
        setattr(self, name, nn.Conv2d(cin, cout, kernel, stride=stride,
                                      padding=padding, bias=True))
        setattr(self, f"{name}_bn", nn.BatchNorm2d(cout, eps=BN_EPS,
                                                   momentum=0.1))

    def _cbr(self, name, x):
        x = getattr(self, name)(x)
        return F.relu(getattr(self, f"{name}_bn")(x))

    def _block(self, spec, x):
        name, _, c1, _, _, pool, proj = spec
        prefix = f"inception_{name}"
        branches = []
        if c1 is not None:
            branches.append(self._cbr(f"{prefix}_1x1", x))
        branches.append(self._cbr(f"{prefix}_3x3",
                                  self._cbr(f"{prefix}_3x3_reduce", x)))
        y = self._cbr(f"{prefix}_double_3x3_reduce", x)
        y = self._cbr(f"{prefix}_double_3x3_1", y)
        branches.append(self._cbr(f"{prefix}_double_3x3_2", y))
        if pool == "avg":
            p = F.avg_pool2d(x, 3, stride=1, padding=1, ceil_mode=True,
                             count_include_pad=True)
        elif pool == "max1":
            p = F.max_pool2d(x, 3, stride=1, padding=1, ceil_mode=True)
        else:
            p = F.max_pool2d(x, 3, stride=2, ceil_mode=True)
        if proj is not None:
            p = self._cbr(f"{prefix}_pool_proj", p)
        branches.append(p)
        return torch.cat(branches, dim=1)

    def forward(self, x):
        """Returns a dict with the stem output and every block's output."""
        x = self._cbr("conv1_7x7_s2", x)
        x = F.max_pool2d(x, 3, stride=2, ceil_mode=True)
        x = self._cbr("conv2_3x3_reduce", x)
        x = self._cbr("conv2_3x3", x)
        x = F.max_pool2d(x, 3, stride=2, ceil_mode=True)
        outs = {"stem": x}
        for spec in INCEPTION_BLOCKS:
            x = self._block(spec, x)
            outs[spec[0]] = x
        return outs


class ChannelAttention(nn.Module):
    """SE attention: pool, 1x1 conv C->C/16, ReLU, 1x1 conv, sigmoid."""

    def __init__(self, channels: int, reduction: int = ALM_REDUCTION) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels // reduction, 1, bias=True)
        self.conv2 = nn.Conv2d(channels // reduction, channels, 1, bias=True)

    def forward(self, x):
        a = F.adaptive_avg_pool2d(x, 1)
        return torch.sigmoid(self.conv2(F.relu(self.conv1(a))))


class SpatialTransformBlock(nn.Module):
    """One pyramid level's ALMs, one per attribute, run in a Python loop."""

    def __init__(self, num_attributes: int, channels: int) -> None:
        super().__init__()
        self.num_attributes = num_attributes
        # Registration order = the official key order: fc, att, stn.
        self.fc_list = nn.ModuleList(
            nn.Linear(channels, 1) for _ in range(num_attributes))
        self.att_list = nn.ModuleList(
            ChannelAttention(channels) for _ in range(num_attributes))
        self.stn_list = nn.ModuleList(
            nn.Linear(channels, 4) for _ in range(num_attributes))

    def forward(self, x):
        """Returns logits (N, M) and box parameters (N, M, 4) [sx sy tx ty]."""
        logits, params = [], []
        for m in range(self.num_attributes):
            xm = x * self.att_list[m](x) + x
            theta = self.stn_list[m](F.adaptive_avg_pool2d(xm, 1).flatten(1))
            sx = torch.sigmoid(theta[:, 0])
            sy = torch.sigmoid(theta[:, 1])
            tx = torch.tanh(theta[:, 2])
            ty = torch.tanh(theta[:, 3])
            zero = torch.zeros_like(sx)
            affine = torch.stack([
                torch.stack([sx, zero, tx], dim=1),
                torch.stack([zero, sy, ty], dim=1)], dim=1)
            grid = F.affine_grid(affine, list(xm.shape), align_corners=False)
            sampled = F.grid_sample(xm, grid, mode="bilinear",
                                    padding_mode="border",
                                    align_corners=False)
            pooled = F.adaptive_avg_pool2d(sampled, 1).flatten(1)
            logits.append(self.fc_list[m](pooled))
            params.append(torch.stack([sx, sy, tx, ty], dim=1))
        return torch.cat(logits, dim=1), torch.stack(params, dim=1)


class ALMNet(nn.Module):
    """The official ALM network: BN-Inception + pyramid + ALMs + global fc.

    forward(x NCHW) returns the four logit tensors (N, M) in the official
    order (3b level, 4d level, 5b level, global); with `return_params=True`
    it returns `(logits, params)`, params the per-level box parameters
    (N, M, 4) [sx, sy, tx, ty] in the same level order.
    """

    def __init__(self, num_attributes: int) -> None:
        super().__init__()
        self.num_attributes = num_attributes
        # Registration order = the official key order.
        self.main_branch = BNInception()
        self.finalfc = nn.Linear(TAP_CHANNELS["5b"], num_attributes)
        c = PYRAMID_CHANNELS
        self.st_3b = SpatialTransformBlock(num_attributes, 3 * c)
        self.st_4d = SpatialTransformBlock(num_attributes, 2 * c)
        self.st_5b = SpatialTransformBlock(num_attributes, c)
        for tap, cin in TAP_CHANNELS.items():
            setattr(self, f"latlayer_{tap}",
                    nn.Conv2d(cin, PYRAMID_CHANNELS, 1, bias=True))

    @staticmethod
    def _upsample_concat(top, lateral):
        # x2 scale factor as the official code: odd-sided maps fail to concat.
        up = F.interpolate(top, scale_factor=2, mode="bilinear",
                           align_corners=False)
        return torch.cat([up, lateral], dim=1)

    def intermediates(self, x):
        """Backbone taps, pyramid maps and global pool, for bisecting."""
        feats = self.main_branch(x)
        x3 = self.latlayer_5b(feats["5b"])
        x2 = self._upsample_concat(x3, self.latlayer_4d(feats["4d"]))
        x1 = self._upsample_concat(x2, self.latlayer_3b(feats["3b"]))
        return {
            "backbone": feats,
            "x1": x1, "x2": x2, "x3": x3,
            "pooled_5b": F.adaptive_avg_pool2d(feats["5b"], 1).flatten(1),
        }

    def forward(self, x, return_params: bool = False):
        inter = self.intermediates(x)
        global_logits = self.finalfc(inter["pooled_5b"])
        l1, p1 = self.st_3b(inter["x1"])
        l2, p2 = self.st_4d(inter["x2"])
        l3, p3 = self.st_5b(inter["x3"])
        logits = (l1, l2, l3, global_logits)
        if return_params:
            return logits, (p1, p2, p3)
        return logits


# ---------------------------------------------------------------- helpers


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@torch.no_grad()
def randomize_(model: ALMNet, seed: int = 0, calibration_shape=(2, 3, 256, 128)
               ) -> ALMNet:
    """Random weights with non-trivial batch-norm statistics and boxes.

    BN running statistics are first set to a random batch's statistics (so
    activations stay well scaled through 60 layers), then perturbed; gammas
    and betas are random. Box layers get small weights and biases that put
    sx, sy in about (0.3, 0.9) and tx, ty in about +-(0.15, 0.75). Returns
    the model in eval mode.
    """
    gen = torch.Generator().manual_seed(seed)

    def uniform(shape, low, high):
        return torch.rand(shape, generator=gen) * (high - low) + low

    for p in model.parameters():
        fan_in = p[0].numel() if p.dim() > 1 else 1
        scale = (3.0 / fan_in) ** 0.5 if p.dim() > 1 else 0.1
        p.copy_(uniform(p.shape, -scale, scale))
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        c = bn.num_features
        bn.weight.copy_(uniform((c,), 0.5, 1.5))
        bn.bias.copy_(uniform((c,), -0.2, 0.2))
        bn.reset_running_stats()
        bn.momentum = 1.0
    calibration = torch.randn(calibration_shape, generator=gen)
    model.train()
    model.main_branch(calibration)
    for bn in bns:
        c = bn.num_features
        bn.momentum = 0.1
        bn.running_mean.add_(uniform((c,), -0.2, 0.2))
        bn.running_var.mul_(uniform((c,), 0.5, 2.0))
    model.eval()
    inter = model.intermediates(calibration)
    for block, level in ((model.st_3b, "x1"), (model.st_4d, "x2"),
                         (model.st_5b, "x3")):
        # |pooled X_m| <= 2 |pooled X|: keep the weights' share of theta
        # about 0.05 (std), so the biases set the boxes and tx, ty stay
        # clearly away from zero, yet a mis-mapped kernel is still visible.
        norm = inter[level].mean(dim=(2, 3)).norm(dim=1).mean()
        limit = 0.05 * 3.0 ** 0.5 / (2.0 * float(norm))
        for stn in block.stn_list:
            stn.weight.copy_(uniform(stn.weight.shape, -limit, limit))
            logit_lo, logit_hi = -0.85, 2.2  # sigmoid -> (0.3, 0.9)
            stn.bias[:2] = uniform((2,), logit_lo, logit_hi)
            sign = torch.where(torch.rand(2, generator=gen) < 0.5, -1.0, 1.0)
            stn.bias[2:] = sign * uniform((2,), 0.3, 0.6)
    return model


def backbone_state_dict(model: ALMNet, num_classes: int = 1000) -> dict:
    """An ImageNet-style BN-Inception state dict taken from `model`.

    Keys without `main_branch.`, plus `last_linear.weight` (1000, 1024) and
    `last_linear.bias`, as in the checkpoint the paper started from.
    """
    state = {k: v.clone() for k, v in model.main_branch.state_dict().items()}
    gen = torch.Generator().manual_seed(1234)
    state["last_linear.weight"] = torch.randn(
        (num_classes, TAP_CHANNELS["5b"]), generator=gen) * 0.01
    state["last_linear.bias"] = torch.zeros(num_classes)
    return state


def official_checkpoint(model: ALMNet, epoch: int = 30,
                        best_accu: float = 0.8) -> dict:
    """What the authors' training script saved: DataParallel `module.` keys."""
    return {
        "epoch": epoch,
        "best_accu": best_accu,
        "state_dict": {f"module.{k}": v.clone()
                       for k, v in model.state_dict().items()},
    }

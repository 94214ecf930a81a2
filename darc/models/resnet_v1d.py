"""ResNet-v1d (He et al., "Bag of Tricks", 2019), laid out as GluonCV's ``ResNetV1d`` / timm's ``resnet*d``.

- deep stem: three conv3x3 (32, 32, 64 channels times ``width_mult``), the first with stride 2, each
  followed by BN-ReLU, then max-pool 3x3 stride 2;
- stages of basic (18/34) or bottleneck (50/101) blocks, widths 64/128/256/512 times ``width_mult``
  (bottleneck output x4), stride 2 on the first block of stages 2-4, on the 3x3 conv of a bottleneck;
- shortcut when shape changes: ``AvgPool2d(2, ceil_mode=True, count_include_pad=False)`` (Identity at
  stride 1, as in timm, so state-dict keys line up), then conv1x1 + BN;
- block: ``out = ReLU(shortcut(x) + branch(x))``; ``zero_init_last`` zeroes the last BN gamma of each
  branch (timm's default, GluonCV's ``last_gamma``);
- head: global average pool, [dropout], linear.

``small_input=True`` (28x28 / 32x32 images) replaces the deep stem and max-pool by one conv3x3 stride
1 (+BN-ReLU) to the first stage's width, so a 28x28 input reaches the head at 4x4 instead of 1x1.

Initialisation follows timm: conv ``kaiming_normal_(fan_out, relu)``, BN (1, 0), PyTorch's default
for the linear layer. ResNet-50-d (3 channels, 1000 classes) has 25.58 M parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from darc.models._registry import register_model
from darc.models.base import ResidualBlock, SlotsMixin


def _conv_bn(in_ch: int, out_ch: int, k: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(out_ch)]


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
    return nn.Sequential(pool, *_conv_bn(in_ch, out_ch, 1))


class ResNetDBlock(ResidualBlock):
    """``ReLU(shortcut(x) + branch(x))``; with ``branch = None``, ``ReLU(shortcut(x))``."""

    expansion = 1

    def __init__(self, branch: nn.Sequential, shortcut: nn.Module) -> None:
        super().__init__()
        self.branch = branch
        self.shortcut = shortcut
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shortcut(x)
        if self.branch is not None:
            out = out + self.branch(x)
        return self.act(out)

    def zero_init_last(self) -> None:
        """Zero the gamma of the branch's last BN."""
        bns = [m for m in self.branch.modules() if isinstance(m, nn.BatchNorm2d)]
        nn.init.zeros_(bns[-1].weight)


class BasicBlock(ResNetDBlock):
    """conv3x3(stride)-BN-ReLU-conv3x3-BN."""

    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int = 1) -> None:
        out_ch = planes * self.expansion
        branch = nn.Sequential(
            *_conv_bn(in_ch, planes, 3, stride), nn.ReLU(inplace=True), *_conv_bn(planes, out_ch, 3)
        )
        super().__init__(branch, _shortcut(in_ch, out_ch, stride))


class Bottleneck(ResNetDBlock):
    """conv1x1-BN-ReLU-conv3x3(stride)-BN-ReLU-conv1x1-BN (output ``4 * planes``)."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1) -> None:
        out_ch = planes * self.expansion
        branch = nn.Sequential(
            *_conv_bn(in_ch, planes, 1), nn.ReLU(inplace=True),
            *_conv_bn(planes, planes, 3, stride), nn.ReLU(inplace=True),
            *_conv_bn(planes, out_ch, 1),
        )
        super().__init__(branch, _shortcut(in_ch, out_ch, stride))


# depth -> (block, blocks per stage)
RESNET_D_DEPTHS: dict[int, tuple[type[ResNetDBlock], tuple[int, ...]]] = {
    10: (BasicBlock, (1, 1, 1, 1)),
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


def _scaled(c: int, mult: float) -> int:
    return max(1, int(round(c * mult)))


class ResNetD(SlotsMixin, nn.Module):
    """ResNet-v1d of ``depth`` (a key of ``RESNET_D_DEPTHS``) with stage widths scaled by ``width_mult``."""

    def __init__(
        self,
        depth: int = 50,
        width_mult: float = 1.0,
        in_chans: int = 3,
        num_classes: int = 1000,
        input_size: int = 224,
        small_input: bool = False,
        drop_rate: float = 0.0,
        zero_init_last: bool = True,
    ) -> None:
        super().__init__()
        if depth not in RESNET_D_DEPTHS:
            raise ValueError(f"ResNet-d depth must be one of {sorted(RESNET_D_DEPTHS)}, got {depth}")
        block, layers = RESNET_D_DEPTHS[depth]
        self.input_shape = (in_chans, input_size, input_size)
        self.num_classes = num_classes
        widths = [_scaled(c, width_mult) for c in (64, 128, 256, 512)]
        stem_w = _scaled(32, width_mult)
        if small_input:
            self.stem = nn.Sequential(*_conv_bn(in_chans, widths[0], 3), nn.ReLU(inplace=True))
        else:
            self.stem = nn.Sequential(
                *_conv_bn(in_chans, stem_w, 3, 2), nn.ReLU(inplace=True),
                *_conv_bn(stem_w, stem_w, 3), nn.ReLU(inplace=True),
                *_conv_bn(stem_w, widths[0], 3), nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        stages, in_ch = [], widths[0]
        for i, (planes, n) in enumerate(zip(widths, layers)):
            blocks = []
            for j in range(n):
                blocks.append(block(in_ch, planes, 2 if i > 0 and j == 0 else 1))
                in_ch = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(in_ch, num_classes)
        self._init_weights(zero_init_last)

    def _init_weights(self, zero_init_last: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_last:
            for m in self.modules():
                if isinstance(m, ResNetDBlock):
                    m.zero_init_last()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(torch.flatten(self.pool(self.forward_features(x)), 1)))


@register_model
def resnet_d(depth: int = 50, **kwargs) -> ResNetD:
    """Any ResNet-v1d; the named variants below are shortcuts."""
    return ResNetD(depth, **kwargs)


@register_model
def resnet18d(**kwargs) -> ResNetD:
    """ResNet-18-d (timm ``resnet18d``)."""
    return ResNetD(18, **kwargs)


@register_model
def resnet34d(**kwargs) -> ResNetD:
    """ResNet-34-d (timm ``resnet34d``)."""
    return ResNetD(34, **kwargs)


@register_model
def resnet50d(**kwargs) -> ResNetD:
    """ResNet-50-v1d (25.6 M params): the paper's ImageNet base.

    GluonCV ``ResNet50_v1d``; timm ``resnet50d`` (load its weights with ``load_timm_resnet_d``).
    """
    return ResNetD(50, **kwargs)


@register_model
def resnet101d(**kwargs) -> ResNetD:
    """ResNet-101-d (timm ``resnet101d``)."""
    return ResNetD(101, **kwargs)


def _small(depth: int, width_mult: float, kwargs: dict) -> ResNetD:
    defaults = dict(width_mult=width_mult, num_classes=10, input_size=32, small_input=True)
    return ResNetD(depth, **{**defaults, **kwargs})


@register_model
def resnet10d_small(**kwargs) -> ResNetD:
    """CPU stand-in: one basic block per stage, widths 16/32/64/128, small-input stem, 10 classes."""
    return _small(10, 0.25, kwargs)


@register_model
def resnet18d_small(**kwargs) -> ResNetD:
    """CPU stand-in: ResNet-18-d at widths 16/32/64/128, small-input stem, 10 classes."""
    return _small(18, 0.25, kwargs)


@register_model
def resnet50d_small(**kwargs) -> ResNetD:
    """CPU stand-in with bottlenecks: ResNet-50-d at widths 8/16/32/64 (x4 out), small-input stem."""
    return _small(50, 0.125, kwargs)

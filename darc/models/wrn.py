"""Pre-activation Wide ResNet-d-k, laid out as GluonCV's ``CIFARWideResNet``.

GluonCV layout (``gluoncv/model_zoo/cifarwideresnet.py``), reproduced here:

- stem: a parameter-free BatchNorm on the input (``scale=False, center=False``; ``input_norm``),
  conv3x3 to 16 channels, BatchNorm;
- three stages of (depth - 4) / 6 ``CIFARBasicBlockV2`` blocks, widths 16k / 32k / 64k, stride 2 at
  the first block of stages 2 and 3;
- block: ``pre = ReLU(BN(x))``; branch ``conv3x3(stride) - BN - ReLU - [Dropout] - conv3x3``;
  shortcut: a 1x1 projection conv (no BN, no bias) **of the pre-activation** when the channel count
  changes (so also in the first block of stage 1, 16 -> 16k, for k > 1), the identity of ``x``
  otherwise; ``out = shortcut + branch``;
- head: BN - ReLU - global average pool - linear.

Weights are initialised as GluonCV's CIFAR training script does (``mx.init.Xavier()``: uniform,
``avg`` fan, magnitude 3, which is ``xavier_uniform_``), biases zero. WRN-28-10 has 36.48 M parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from darc.models._registry import register_model
from darc.models.base import ResidualBlock, SlotsMixin


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)


class PreActBlock(ResidualBlock):
    """GluonCV's ``CIFARBasicBlockV2``: the shared pre-activation is ``self.preact``."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.preact = nn.Sequential(nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True))
        layers: list[nn.Module] = [
            _conv3x3(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)
        ]
        if drop_rate > 0:
            layers.append(nn.Dropout(drop_rate))
        layers.append(_conv3x3(out_ch, out_ch))
        self.branch = nn.Sequential(*layers)
        # GluonCV projects when the channel count changes; a stride without a channel change (which
        # GluonCV never builds) also needs one, or the shapes would not add.
        self.projection = in_ch != out_ch or stride != 1
        self.shortcut: nn.Module = (
            nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False) if self.projection else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch is None and not self.projection:
            return self.shortcut(x)
        pre = self.preact(x)
        out = self.shortcut(pre if self.projection else x)
        return out if self.branch is None else out + self.branch(pre)


class WideResNet(SlotsMixin, nn.Module):
    """WRN-depth-widen_factor for small images (CIFAR 32x32, Fashion-MNIST 28x28 with in_chans=1)."""

    def __init__(
        self,
        depth: int = 28,
        widen_factor: int = 10,
        in_chans: int = 3,
        num_classes: int = 10,
        input_size: int = 32,
        drop_rate: float = 0.0,
        input_norm: bool = True,
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n + 4 with n >= 1, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.input_shape = (in_chans, input_size, input_size)
        self.num_classes = num_classes
        self.stem = nn.Sequential(
            nn.BatchNorm2d(in_chans, affine=False) if input_norm else nn.Identity(),
            _conv3x3(in_chans, widths[0]),
            nn.BatchNorm2d(widths[0]),
        )
        stages = []
        for i in range(3):
            stride = 1 if i == 0 else 2
            blocks = [PreActBlock(widths[i], widths[i + 1], stride, drop_rate)]
            blocks += [PreActBlock(widths[i + 1], widths[i + 1], 1, drop_rate) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.norm = nn.BatchNorm2d(widths[-1])
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.stages(self.stem(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.forward_features(x)), 1))


@register_model
def wide_resnet(depth: int = 28, widen_factor: int = 10, **kwargs) -> WideResNet:
    """Any WRN-depth-k; the named variants below are shortcuts."""
    return WideResNet(depth, widen_factor, **kwargs)


@register_model
def wrn28_10(**kwargs) -> WideResNet:
    """WRN-28-10 (36.5 M params): the paper's CIFAR-10 base (GluonCV ``cifar_wideresnet28_10``)."""
    return WideResNet(28, 10, **kwargs)


@register_model
def wrn40_8(**kwargs) -> WideResNet:
    """WRN-40-8 (GluonCV ``cifar_wideresnet40_8``)."""
    return WideResNet(40, 8, **kwargs)


@register_model
def wrn16_10(**kwargs) -> WideResNet:
    """WRN-16-10 (GluonCV ``cifar_wideresnet16_10``)."""
    return WideResNet(16, 10, **kwargs)


@register_model
def wrn40_4(**kwargs) -> WideResNet:
    """WRN-40-4."""
    return WideResNet(40, 4, **kwargs)


@register_model
def wrn16_8(**kwargs) -> WideResNet:
    """WRN-16-8."""
    return WideResNet(16, 8, **kwargs)


@register_model
def wrn16_4(**kwargs) -> WideResNet:
    """WRN-16-4."""
    return WideResNet(16, 4, **kwargs)


@register_model
def wrn16_2(**kwargs) -> WideResNet:
    """WRN-16-2."""
    return WideResNet(16, 2, **kwargs)


@register_model
def wrn16_1(**kwargs) -> WideResNet:
    """WRN-16-1 (identity shortcut in the first block: 16 -> 16 channels)."""
    return WideResNet(16, 1, **kwargs)


@register_model
def wrn10_2(**kwargs) -> WideResNet:
    """WRN-10-2: one block per stage, a CPU-scale stand-in."""
    return WideResNet(10, 2, **kwargs)

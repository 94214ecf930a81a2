"""Load timm ``resnet*d`` state dicts (e.g. ``resnet50d.gluon_in1k``, GluonCV's converted weights).

Key mapping, timm -> darc (``i`` = timm stage 1..4, ``j`` = block; BN keys carry their suffixes):

====================================  ==========================================
timm                                  darc ``ResNetD``
====================================  ==========================================
``conv1.{0,1,3,4,6}``                 ``stem.{0,1,3,4,6}`` (deep stem convs/BNs)
``bn1``                               ``stem.7``
``layer{i}.{j}.conv1`` / ``bn1``      ``stages.{i-1}.{j}.branch.0`` / ``.1``
``layer{i}.{j}.conv2`` / ``bn2``      ``stages.{i-1}.{j}.branch.3`` / ``.4``
``layer{i}.{j}.conv3`` / ``bn3``      ``stages.{i-1}.{j}.branch.6`` / ``.7`` (bottleneck only)
``layer{i}.{j}.downsample.{k}``       ``stages.{i-1}.{j}.shortcut.{k}`` (pool, conv, BN)
``fc``                                ``fc``
====================================  ==========================================

Only the deep stem (``small_input=False``) has a timm counterpart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

_BLOCK_LAYERS = {"conv1": 0, "bn1": 1, "conv2": 3, "bn2": 4, "conv3": 6, "bn3": 7}
_STEM = re.compile(r"^conv1\.(\d+)\.")
_BLOCK = re.compile(r"^layer(\d+)\.(\d+)\.(conv[123]|bn[123])\.")
_DOWN = re.compile(r"^layer(\d+)\.(\d+)\.downsample\.")


def timm_resnet_d_key_map(key: str) -> str:
    """The darc ``ResNetD`` state-dict key for a timm ``resnet*d`` key."""
    if m := _STEM.match(key):
        return f"stem.{m[1]}." + key[m.end():]
    if key.startswith("bn1."):
        return "stem.7." + key[len("bn1."):]
    if m := _BLOCK.match(key):
        return f"stages.{int(m[1]) - 1}.{m[2]}.branch.{_BLOCK_LAYERS[m[3]]}." + key[m.end():]
    if m := _DOWN.match(key):
        return f"stages.{int(m[1]) - 1}.{m[2]}.shortcut." + key[m.end():]
    if key.startswith("fc."):
        return key
    raise KeyError(f"timm key {key!r} has no darc ResNetD counterpart")


def load_timm_resnet_d(our_model: nn.Module, timm_state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Load a timm ``resnet*d`` state dict into a matching darc ``ResNetD`` (strict); returns the model."""
    mapped = {timm_resnet_d_key_map(k): v for k, v in timm_state_dict.items()}
    ours = set(our_model.state_dict())
    missing, unexpected = sorted(ours - set(mapped)), sorted(set(mapped) - ours)
    if missing or unexpected:
        raise KeyError(
            f"timm state dict does not match {type(our_model).__name__}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]} (same depth and width? small_input=False?)"
        )
    our_model.load_state_dict(mapped, strict=True)
    return our_model

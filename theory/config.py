"""The ``theory:`` section of the workflow config, resolved for a scale (smoke, default, extended, paper)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

SCALES = ("smoke", "default", "extended", "paper")
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "theory.yaml"


def _merge(base: dict, override: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def settings(config: Mapping[str, Any], scale: str | None = None) -> dict[str, Any]:
    """The theory settings: ``config['theory']`` with ``theory.scales[scale]`` merged over it.

    ``scale`` defaults to ``config['scale']`` (then ``default``). The result has no ``scales`` key,
    carries the chosen ``scale``, and every experiment mapping has ``seeds`` (the section's seeds
    unless it sets its own).
    """
    scale = scale or config.get("scale", "default")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, not {scale!r}")
    section = dict(config["theory"])
    overrides = (section.pop("scales", None) or {}).get(scale) or {}
    out = _merge(section, overrides)
    for part in out.values():  # each experiment carries its own seeds (the section's by default)
        if isinstance(part, dict):
            part.setdefault("seeds", list(out.get("seeds", [0])))
    out["scale"] = scale
    return out


def load(path: str | Path = DEFAULT_CONFIG, scale: str = "default") -> dict[str, Any]:
    """Resolved settings from a YAML file with a top-level ``theory:`` key (``config/theory.yaml``)."""
    with open(path) as fh:
        config = yaml.safe_load(fh)
    return settings(config, scale)

"""Experiment configuration: YAML files, ``key.path=value`` overrides, schema validation.

One schema (``darc/configs/experiment.schema.yaml``) checks every experiment, whether it comes from
``darc <command> --config`` or from the Snakemake workflow's ``config/config.yaml``.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).parent / "configs" / "experiment.schema.yaml"


class ConfigError(ValueError):
    """A configuration does not fit the schema; the message names the key and what to do."""


@lru_cache(maxsize=1)
def experiment_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with an error that names the file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a YAML mapping, not {type(data).__name__}")
    return data


def apply_overrides(cfg: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML) to a copy of ``cfg``."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like key.path=value")
        node = cfg
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a mapping")
        node[leaf] = yaml.safe_load(raw)
    return cfg


def _describe(err: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed))
        return f"unknown config key(s) {extra} under {where}; allowed: {allowed}"
    return f"config key {where}: {err.message}"


def validate_experiment(cfg: dict[str, Any], name: str = "experiment") -> dict[str, Any]:
    """Check ``cfg`` against the experiment schema; raise :class:`ConfigError` listing every problem."""
    validator = jsonschema.Draft202012Validator(experiment_schema())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        lines = "\n  ".join(_describe(e) for e in errors)
        raise ConfigError(f"invalid {name} config:\n  {lines}")
    return cfg


def deep_merge(base: dict[str, Any], over: dict[str, Any] | None) -> dict[str, Any]:
    """``base`` with ``over`` merged in recursively (mappings merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def experiment_at_scale(raw: dict[str, Any], scale: str, name: str = "experiment") -> dict[str, Any]:
    """A workflow experiment entry with its ``scales.<scale>`` overrides merged in, validated."""
    raw = copy.deepcopy(raw)
    scales = raw.pop("scales", {}) or {}
    return validate_experiment(deep_merge(raw, scales.get(scale)), name=f"{name} (scale {scale})")


#: The workflow's scales (`--config scale=...`, `darc --scale`): every experiment may override per scale.
SCALES = ("smoke", "default", "extended", "paper")

#: Search methods run as peers over the lambda grid at the first seed (workflow point ``<method>-lam<L>``;
#: :data:`darc.experiment.SEARCH_METHODS`): SSS, and DARC at uniform cost or with the params / MACs cost model.
GRID_SEARCH_PEERS: tuple[str, ...] = ("sss", "darc_uniform", "darc_params", "darc_macs")

#: Search methods that gate DARC's own candidates (only the cost model differs), so every lambda of these at one
#: seed starts from the same gated, distilled network (``darc gate``; workflow rule ``gate``). The reference and
#: SSS gate only the originals: nothing to distill, no shared start.
GATED_START_METHODS: tuple[str, ...] = ("darc", "darc_uniform", "darc_params", "darc_macs")

#: Where the seeds an experiment uses live; :func:`experiment_for_seed` sets all of them from one number.
SEED_KEYS: tuple[tuple[str, ...], ...] = (
    ("seed",), ("train", "seed"), ("search", "train", "seed"), ("finetune", "seed"),
)


def experiment_seeds(exp: dict[str, Any]) -> list[int]:
    """The experiment's ``seeds`` list (default: its ``seed``); the first one is the selection seed."""
    return [int(s) for s in exp.get("seeds") or [exp.get("seed", 0)]]


def peer_seeds(exp: dict[str, Any], key: str, match: str | None = None) -> list[int]:
    """The seeds a peer runs: the first ``peers.<key>`` of :func:`experiment_seeds` (all where it is null
    or unset). ``prune_seeds`` may instead map each Torch-Pruning match (latency / params / macs) to its own
    count; ``match`` picks the entry (a match the mapping leaves out runs on all seeds)."""
    n = (exp.get("peers") or {}).get(key)
    if isinstance(n, dict):
        if match is None:
            raise ValueError(f"peers.{key} is given per match: say which match ({', '.join(n)})")
        n = n.get(match)
    seeds = experiment_seeds(exp)
    return seeds[:n] if n else seeds


def experiment_for_seed(exp: dict[str, Any], seed: int) -> dict[str, Any]:
    """``exp`` with every seed it draws from derived from ``seed``: the data subset and validation split,
    model init, data order and augmentation of base training, search and fine-tuning (:data:`SEED_KEYS`).

    With ``shared_base: true`` every seed starts from the first seed's base: the data split (``data_seed``)
    and the base recipe's seed stay the first seed's, so no seed validates on images that base trained on;
    search, fine-tune and peers are re-seeded."""
    out = copy.deepcopy(exp)
    for path in SEED_KEYS:
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = int(seed)
    if exp.get("shared_base"):  # one base (the first seed's) for every seed: its data split and recipe seed
        first = experiment_seeds(exp)[0]
        out["data_seed"] = first
        out.setdefault("train", {})["seed"] = first
    return out


def experiment_yaml(exp: dict[str, Any]) -> str:
    """``exp`` as a YAML file :func:`load_experiment` reads back to the same mapping (the workflow writes
    each experiment so, for the ``darc`` commands of its training jobs)."""
    return yaml.safe_dump(exp, sort_keys=False, default_flow_style=False)


def load_experiment(
    path: str | Path, overrides: list[str] | None = None, key: str | None = None, scale: str = "default",
) -> dict[str, Any]:
    """Load an experiment from a YAML file, or the ``experiments.<key>`` entry of a workflow config
    (with its ``scales.<scale>`` overrides merged in), then apply ``overrides``; every seed key is derived
    from ``seed`` (default: the first of ``seeds``), so ``--set seed=3`` reseeds the whole run."""
    cfg = load_yaml(path)
    if key is not None:
        try:
            cfg = cfg["experiments"][key]
        except KeyError:
            raise ConfigError(f"{path} has no experiments.{key}; it has {sorted(cfg.get('experiments', {}))}") from None
        scales = cfg.pop("scales", {}) or {}
        cfg = deep_merge(cfg, scales.get(scale))
    cfg = apply_overrides(cfg, overrides or [])
    cfg = validate_experiment(cfg, name=str(path) + (f":{key}" if key else ""))
    return experiment_for_seed(cfg, int(cfg.get("seed", experiment_seeds(cfg)[0])))

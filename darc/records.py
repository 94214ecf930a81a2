"""Run records: the ``result.json`` every stage writes, with its provenance.

Each stage validates its experiment and pins the code's commit first (:func:`begin_stage`), then writes one
record (:func:`write_result`) that starts with :func:`stage_record` (scale, dataset, model, device, threads,
torch version, git commit, config).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from darc.data import DatasetBundle
from darc.io import atomic_write_json
from darc.provenance import git_commit, provenance
from darc.spec import Experiment

RESULT = "result.json"
#: What a peer's result adds to its bench row: the DARC point it copies and how close a match came.
PEER_COLUMNS = ("matches", "match_target", "match_measured", "match_reached", "prune_ratio")


def begin_stage(exp: Experiment | dict[str, Any]) -> Experiment:
    """Validate ``exp`` into the typed :class:`~darc.spec.Experiment` the stage passes down, and pin the git
    commit this process's outputs record: the code it started with, even if the checkout moves on while it
    runs."""
    typed = Experiment.of(exp)
    git_commit()
    return typed


def write_result(result: dict[str, Any], path: Path) -> None:
    """Rank 0 writes a stage's ``result.json``; under torchrun the other ranks wait until it is there."""
    from darc.train import distributed as D

    if D.is_main_process():
        atomic_write_json(result, path)
    D.barrier()


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (recorded for versioned inputs such as a latency table)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def stage_record(exp: Experiment, scale: str, data: DatasetBundle, stage: str, **extra: Any) -> dict[str, Any]:
    """The provenance every stage's record starts with (the experiment's validated mapping as ``config``)."""
    return provenance(
        scale=scale, dataset=data.meta.name, model=exp.model, stand_in=data.meta.stand_in,
        config=exp.raw, device=exp.device, stage=stage, **extra,
    )


def base_seed_of(base_dir: str | Path, exp: Experiment) -> int:
    """The seed of the base a run started from (its ``result.json``; else the run's own seed)."""
    path = Path(base_dir) / RESULT
    return int(json.loads(path.read_text()).get("seed", 0)) if path.exists() else exp.seed

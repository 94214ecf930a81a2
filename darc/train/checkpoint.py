"""The training checkpoint: one dict, written atomically, loadable with ``weights_only=True``.

Keys: ``model``, ``optimizer``, ``scheduler``, ``scaler`` (state dicts; scaler None without fp16
AMP), ``epoch`` (the epoch in progress, 0-based; equal to the epoch count once a run is done),
``step_in_epoch`` (optimizer steps already done in it; 0 at an epoch boundary), ``config``
(``TrainConfig.to_dict()``), ``metrics`` (the last epoch's log row), ``history`` (all log rows),
``progress`` (the interrupted epoch's running sums, summed over ranks), ``rng`` (rank 0's generator
states, :func:`darc.train.rng.rng_state`) and ``rng_ranks`` (every rank's, in rank order).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from darc.io import CheckpointError, atomic_torch_save, safe_torch_load

CHECKPOINT = "checkpoint.pt"
FORMAT = 1
REQUIRED = ("model", "optimizer", "scheduler", "scaler", "epoch", "step_in_epoch", "config", "metrics", "rng")


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` atomically (a crash leaves the previous checkpoint intact)."""
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise ValueError(f"checkpoint state lacks {missing}")
    return atomic_torch_save({"format": FORMAT, **state}, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with ``weights_only=True``; a :class:`CheckpointError` if it is not a training checkpoint."""
    state = safe_torch_load(path)
    missing = [k for k in REQUIRED if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(
            f"{path} is not a darc training checkpoint (missing {missing}); delete it to start afresh "
            "or point out_dir elsewhere"
        )
    return state

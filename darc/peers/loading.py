"""The plain network of any fine-tune run directory: a materialised architecture (DARC, the reference, SSS,
random decisions, from scratch) or a Torch-Pruning network rebuilt from its shape record."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from darc.io import safe_torch_load
from darc.materialize import load_materialized
from darc.models import create_model
from darc.records import RESULT


def load_finetuned(finetune_dir: str | Path) -> nn.Module:
    """The plain fine-tuned network of a fine-tune run directory: a materialised architecture (DARC, the
    reference, SSS, random decisions, from scratch) or a Torch-Pruning network (its shape record)."""
    result = json.loads((Path(finetune_dir) / RESULT).read_text())
    if result.get("pruned"):
        from darc.peers.pruning import RECORD_NAME, load_pruned  # torch_pruning only where a run needs it

        record = json.loads((Path(result["pruned"]) / RECORD_NAME).read_text())
        return load_pruned(lambda: create_model(record["model_name"], **record["model_kwargs"]), record,
                           safe_torch_load(result["weights"]))
    return load_materialized(result["architecture"], result["weights"])

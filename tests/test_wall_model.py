"""benchmarks/tools/wall_model.py: a run's wall time modelled from its per-job records, with jobs dropped."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import darc

REPO = Path(darc.__file__).resolve().parent.parent


def _module():
    spec = importlib.util.spec_from_file_location("wall_model", REPO / "benchmarks" / "tools" / "wall_model.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod   # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


wm = _module()


def _record(root: Path, rule: str, job: str, seconds: float) -> None:
    (root / rule).mkdir(parents=True, exist_ok=True)
    (root / rule / f"{job}.tsv").write_text(f"s\th:m:s\n{seconds}\t0:00:00\n")


def test_timing_jobs_count_alone_the_rest_over_the_cores(tmp_path):
    _record(tmp_path, "bench", "cifar_wrn", 100.0)
    _record(tmp_path, "latency_table", "cifar_wrn", 30.0)
    _record(tmp_path, "peer_prune", "cifar_wrn_seed0_tp_latency-lam8", 30.0)   # leaves a core: packed
    _record(tmp_path, "peer_prune", "cifar_wrn_seed0_tp_params-lam8", 8.0)
    _record(tmp_path, "search", "cifar_wrn_seed0_lam8", 200.0)
    _record(tmp_path, "search", "cifar_wrn_seed0_lam64", 162.0)
    seconds = wm.job_seconds(tmp_path)
    whole = wm.model(seconds, cores=2)
    assert (whole.timing_s, whole.packed_s, whole.jobs) == (130.0, 400.0, 6)
    assert whole.wall_s == 130.0 + 200.0
    cut = wm.model(seconds, cores=2, drop=[r"lam64$"])
    assert cut.jobs == 5 and cut.wall_s == 130.0 + 119.0


def test_a_folder_without_records_says_what_to_pass(tmp_path):
    with pytest.raises(SystemExit, match="--runs"):
        wm.job_seconds(tmp_path)

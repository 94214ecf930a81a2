"""The Snakemake workflow resolves its whole DAG (dry run) at every scale, lint-free of config errors."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULES = ("data_check", "train_base", "latency_table", "search", "finetune", "select_points", "bench",
         "experiment_table", "summary", "tradeoff_figure", "gates_figure", "architecture_figure", "rule_times",
         "theory_experiment",
         "theory_table",
         "theory_figure_linear", "theory_figure_hidden", "theory_figure_gap")


@pytest.mark.parametrize("scale", ["smoke", "default", "paper"])
def test_workflow_dry_run_has_every_rule(scale, tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--nolock", "--cores", "8", "--forceall", "--config",
         f"scale={scale}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for rule in RULES:
        assert rule in res.stdout, rule
    results = "results/" if scale == "default" else f"runs/{scale}/results/"
    assert f"{results}tables/summary.md" in res.stdout and f"{results}tables/theory.csv" in res.stdout

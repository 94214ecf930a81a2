"""The Snakemake workflow resolves its whole DAG (dry run) at every scale, lint-free of config errors; its
training jobs run the `darc` CLI (under torchrun on the experiment's GPUs at paper scale), and the printed
commands give each stage exactly the experiment the workflow merged for that seed."""

import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

from darc.config import GRID_SEARCH_PEERS

ROOT = Path(__file__).resolve().parent.parent
RULES = ("data_check", "experiment_config", "train_base", "latency_table", "search", "finetune", "select_points",
         "bench", "experiment_table", "summary", "tradeoff_figure", "gates_figure", "architecture_figure",
         "rule_times",
         "theory_experiment",
         "theory_table",
         "theory_figure_linear", "theory_figure_hidden", "theory_figure_gap")
TRAINING = {"train_base": "train", "search": "search", "finetune": "finetune"}


@cache
def dry_run(scale):
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "--nolock", "--cores", "8", "--forceall", "--config",
         f"scale={scale}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout


def shell_commands(out, rule):
    """The shell commands a dry run printed for every job of `rule`."""
    commands, current = [], None
    for line in out.splitlines():
        if line.startswith(("rule ", "checkpoint ", "localrule ")):
            current = line.split()[1].rstrip(":")
        elif line.startswith("Shell command: ") and current == rule:
            commands.append(line.removeprefix("Shell command: "))
    return commands


@pytest.mark.parametrize("scale", ["smoke", "default", "extended", "paper"])
def test_workflow_dry_run_has_every_rule(scale):
    out = dry_run(scale)
    for rule in RULES:
        assert rule in out, rule
    results = "results/" if scale == "default" else f"runs/{scale}/results/"
    assert f"{results}tables/summary.md" in out and f"{results}tables/theory.csv" in out


@pytest.mark.parametrize("scale", ["smoke", "default", "extended", "paper"])
def test_training_jobs_launch_the_cli_under_torchrun_only_on_gpus(scale):
    """CPU scales: one process, `python -m darc.cli`; paper scale (device: cuda): torchrun with the rule's GPUs."""
    out = dry_run(scale)
    for rule, command in TRAINING.items():
        commands = shell_commands(out, rule)
        assert commands, rule
        for c in commands:
            launcher, cli = c.split(" -m darc.cli ")
            assert cli.startswith(f"{command} --config runs/{scale}/") and "--no-progress" in cli, c
            if scale == "paper":  # the experiment's `gpus` (ImageNet: 4 x 256 = the recipe's batch of 1024)
                gpus = 4 if "runs/paper/imagenet_resnet/" in cli else 1
                assert launcher.endswith(f"--standalone --nproc_per_node={gpus}"), c
                assert Path(shlex.split(launcher)[0]).name == "torchrun", c
            else:
                assert "torchrun" not in c and Path(shlex.split(launcher)[0]).name.startswith("python"), c


def test_gpu_resources_set_the_torchrun_process_count():
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "--nolock", "--cores", "8", "--forceall", "--config",
         "scale=paper", "--set-resources", "train_base:gpu=4", "--until", "train_base"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    commands = shell_commands(res.stdout, "train_base")
    assert commands and all("torchrun --standalone --nproc_per_node=4 -m darc.cli train" in c for c in commands)


@pytest.mark.parametrize("scale", ["smoke", "default", "extended", "paper"])
def test_printed_commands_give_each_stage_the_seeded_experiment(scale, tmp_path, monkeypatch):
    """Run the CLI on the printed arguments (stages replaced by recorders): each stage gets the workflow's
    experiment with every seed from the job's seed wildcard, the search the experiment's latency table, the
    reference point its flag, and the scale and directories of the job."""
    import darc.experiment
    from darc.cli import main
    from darc.config import experiment_at_scale, experiment_for_seed, experiment_yaml

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    experiments = {k: experiment_at_scale(v, scale) for k, v in config["experiments"].items()}
    files = {}
    for name, exp in experiments.items():
        files[f"runs/{scale}/{name}/experiment.yaml"] = tmp_path / f"{name}.yaml"
        files[f"runs/{scale}/{name}/experiment.yaml"].write_text(experiment_yaml(exp))
    seen = []

    def recorder(stage):
        def run(exp, *args, **kwargs):
            seen.append((stage, exp, args, kwargs))
            return {}
        return run

    monkeypatch.setattr(darc.experiment, "train_base", recorder("train"))
    monkeypatch.setattr(darc.experiment, "search", recorder("search"))
    monkeypatch.setattr(darc.experiment, "finetune_search", recorder("finetune"))
    out = dry_run(scale)
    checked = set()
    for rule in TRAINING:
        for command in shell_commands(out, rule):
            argv = shlex.split(command.split(" -m darc.cli ")[1].split(" > ")[0])
            config_path = argv[argv.index("--config") + 1]
            argv[argv.index("--config") + 1] = str(files[config_path])
            seen.clear()
            assert main(argv) == 0, command
            (stage, exp, args, kwargs), = seen
            name, seed = config_path.split("/")[2], int(argv[argv.index("--set") + 1].removeprefix("seed="))
            want = experiment_for_seed(experiments[name], seed)
            run = f"runs/{scale}/{name}/seed{seed}"
            base_seed = experiments[name]["seeds"][0] if experiments[name].get("shared_base") else seed
            assert kwargs["scale"] == scale and kwargs["progress"] is False
            if stage == "search":
                want["search"]["latency_table"] = f"runs/{scale}/{name}/latency_table.json"
                point = Path(args[2]).name
                method, _, lam = point.rpartition("lam")
                method = "reference" if point == "reference" else method.rstrip("-") or "darc"
                assert args[0] == (0.0 if point == "reference" else float(lam))
                assert args[1:] == (f"runs/{scale}/{name}/seed{base_seed}/base", f"{run}/search/{point}")
                assert kwargs["method"] == method
                checked.add(method)
            elif stage == "finetune":
                point = Path(args[1]).name
                assert args == (f"{run}/search/{point}", f"{run}/finetune/{point}")
            else:
                assert args == (f"{run}/base",)
            assert exp == want, command
            checked.add(stage)
    assert checked >= {"train", "search", "finetune", "reference", "darc"}
    for grid_peer in GRID_SEARCH_PEERS:
        assert grid_peer in checked or not any(grid_peer in e.get("peers", {}).get("methods", [])
                                               for e in experiments.values())


def test_snakemake_lint_is_clean():
    """Every rule has a log, a conda environment (workflow/envs/darc.yaml) and no mixed functions."""
    res = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "Lints for" not in out and "in a good condition" in out, out[-3000:]


def test_the_workflow_refuses_to_start_without_the_timing_mutex():
    """Without profiles/default (`--workflow-profile none`) two timing jobs could time each other:
    the workflow stops before any job and says how to set the `bench` resource; `--resources bench=1` runs."""
    profile = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    assert profile["resources"] == ["bench=1"]
    base = [sys.executable, "-m", "snakemake", "-n", "--nolock", "--cores", "2", "--config", "scale=smoke",
            "--workflow-profile", "none"]
    res = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and "--resources bench=1" in res.stdout + res.stderr
    res = subprocess.run(base + ["--resources", "bench=1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

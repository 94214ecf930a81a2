"""The typed experiment (darc.spec): built once from the schema, the single source of its defaults, and what
the stages read instead of calling back up into the raw mapping."""

import re
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from darc.config import ConfigError, experiment_at_scale, load_yaml
from darc.records import begin_stage
from darc.spec import BenchSpec, BudgetSpec, Experiment, PeersSpec, PruneSpec, SelectionSpec, schema_defaults

REPO = Path(__file__).resolve().parents[1]
SECTIONS = {BenchSpec: ("bench",), BudgetSpec: ("budget",), PeersSpec: ("peers",), PruneSpec: ("peers", "prune"),
            SelectionSpec: ("selection",)}


@pytest.mark.parametrize("cls", list(SECTIONS))
def test_every_required_field_takes_its_default_from_the_schema(cls):
    declared = schema_defaults(*SECTIONS[cls])
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    assert required and all(name in declared for name in required), (cls.__name__, required, declared)


def test_an_empty_section_gets_the_schemas_defaults_and_a_given_key_wins():
    exp = Experiment.of({"dataset": "synthetic", "model": "wrn10_2", "bench": {"pairs": 4}})
    assert exp.bench.pairs == 4 and exp.bench.batch_sizes == schema_defaults("bench")["batch_sizes"]
    assert exp.budget.lam_low == schema_defaults("budget")["lam_low"] and exp.peers.prune.steps == 40
    assert (exp.seed, exp.seeds, exp.device, exp.data_seed, exp.cost_batch_size) == (0, [0], "cpu", 0, 1)
    assert exp.stands_for == "wrn10_2" and exp.raw["bench"] == {"pairs": 4}


def test_timing_threads_fall_back_from_the_bench_to_the_experiment():
    base = {"dataset": "synthetic", "model": "wrn10_2"}
    assert Experiment.of({**base, "threads": 3}).timing_threads == 3
    assert Experiment.of({**base, "threads": 3, "bench": {"threads": 1}}).timing_threads == 1


def test_of_is_idempotent_and_a_bad_key_is_refused_with_its_name():
    exp = Experiment.of({"dataset": "synthetic", "model": "wrn10_2", "seed": 4, "data_seed": 1})
    assert Experiment.of(exp) is exp and (exp.seed, exp.data_seed) == (4, 1)
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['pair'\] under bench"):
        Experiment.of({"dataset": "synthetic", "model": "wrn10_2", "bench": {"pair": 4}})


def test_a_stage_starts_from_the_typed_experiment():
    assert isinstance(begin_stage({"dataset": "synthetic", "model": "wrn10_2"}), Experiment)


@pytest.mark.parametrize("scale", ["smoke", "default", "extended", "paper"])
def test_every_shipped_experiment_builds(scale):
    for name, raw in load_yaml(REPO / "config" / "config.yaml")["experiments"].items():
        exp = Experiment.of(experiment_at_scale(raw, scale, name))
        assert exp.seeds and exp.bench.pairs >= 2 and exp.peers.prune.match


def test_no_stage_calls_back_up_into_the_raw_mapping():
    """Only the config layer and the recipe's section merging read the raw experiment mapping
    (``exp.get(...)`` / ``exp["..."]``); every stage and command reads the typed experiment."""
    allowed = {"config.py", "recipe.py", "spec.py"}
    offenders = []
    for path in sorted((REPO / "darc").rglob("*.py")):
        if path.name in allowed:
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\bexp(\.get\(|\[\")", line):
                offenders.append(f"{path.relative_to(REPO)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)

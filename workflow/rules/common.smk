# Shared helpers: the chosen scale, each experiment's merged config, and output paths.
import copy
import json

from darc.config import validate_experiment

SCALE = config.get("scale", "default")
RESULTS = "results" if SCALE == "default" else f"runs/{SCALE}/results"
RUNS = f"runs/{SCALE}"


def deep_merge(base, over):
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def experiment(name):
    """The experiment's config with its `scales.<scale>` overrides merged in, validated."""
    raw = copy.deepcopy(config["experiments"][name])
    scales = raw.pop("scales", {})
    merged = deep_merge(raw, scales.get(SCALE, {}))
    return validate_experiment(merged, name=f"experiments.{name} (scale {SCALE})")


EXPERIMENTS = {name: experiment(name) for name in config["experiments"]}


def lams(name):
    return [f"{lam:g}" for lam in EXPERIMENTS[name]["search"]["lams"]]


def finetune_results(wildcards):
    return expand(f"{RUNS}/{{exp}}/finetune/lam{{lam}}/result.json", exp=wildcards.exp, lam=lams(wildcards.exp))


def search_results(wildcards):
    return expand(f"{RUNS}/{{exp}}/search/lam{{lam}}/result.json", exp=wildcards.exp, lam=lams(wildcards.exp))


EXPERIMENT_OUTPUTS = (
    expand(f"{RESULTS}/tables/{{exp}}.csv", exp=EXPERIMENTS)
    + expand(f"{RESULTS}/tables/{{exp}}_base.json", exp=EXPERIMENTS)
    + expand(f"{RESULTS}/figures/{{exp}}_tradeoff.{{ext}}", exp=EXPERIMENTS, ext=["png", "pdf"])
    + expand(f"{RESULTS}/figures/{{exp}}_gates.{{ext}}", exp=EXPERIMENTS, ext=["png", "pdf"])
    + [f"{RESULTS}/tables/summary.md"]
)


wildcard_constraints:
    exp="|".join(EXPERIMENTS) or "none",
    lam=r"[0-9.e+-]+",

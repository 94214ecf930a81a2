# Shared helpers: the chosen scale, each experiment's merged config, and output paths.
from darc.config import experiment_at_scale

SCALE = config.get("scale", "default")
RESULTS = "results" if SCALE == "default" else f"runs/{SCALE}/results"
RUNS = f"runs/{SCALE}"


EXPERIMENTS = {
    name: experiment_at_scale(raw, SCALE, name=f"experiments.{name}") for name, raw in config["experiments"].items()
}


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

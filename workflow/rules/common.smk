# Shared helpers: the chosen scale, each experiment's merged config, seeds, and output paths.
# Layout under runs/<scale>/<exp>/: latency_table.json; seed<S>/base; seed<S>/search/<point>;
# seed<S>/finetune/<point> where <point> is lam<L> (a DARC search), `reference` (the equal-budget
# reference: the same pipeline with the penalty off and only the original candidates) or <method>-lam<L> (a
# grid peer: sss, darc_uniform, darc_params, darc_macs); the other peers of a chosen point lam<L>:
# seed<S>/random/lam<L>, seed<S>/scratch/lam<L>, seed<S>/<tp|tpbn>/<match>-lam<L>/{pruned,finetune}
# (tpbn: BN-scale pruning of seed<S>/tpbn/sparsity, the sparsity phase's output);
# operating_points.json (chosen on the first seed's validation accuracy); bench.csv; experiment.yaml (the
# experiment the training jobs' `darc` commands read, with the seed given by the job's `seed` wildcard).
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from darc.config import (
    GATED_START_METHODS, GRID_SEARCH_PEERS, experiment_at_scale, experiment_for_seed, experiment_seeds, peer_seeds,
)
from darc.reporting import points_to_reseed, points_with_peers

SCALE = config.get("scale", "default")
RESULTS = "results" if SCALE == "default" else f"runs/{SCALE}/results"
RUNS = f"runs/{SCALE}"
BENCHMARKS = f"{RUNS}/benchmarks"


def check_timing_mutex():
    """Refuse to start unless the `bench` resource admits one timing job at a time (profiles/default sets
    it): the latency-matching jobs leave a core to a training job and would otherwise time each other."""
    bench = workflow.global_resources.get("bench")
    limit = getattr(bench, "value", bench)
    if limit != 1:
        raise WorkflowError(
            f"the timing jobs need the `bench` resource limited to 1 (got {limit!r}): run from the repository "
            "root so Snakemake reads profiles/default, or pass `--resources bench=1`"
        )


check_timing_mutex()


EXPERIMENTS = {
    name: experiment_at_scale(raw, SCALE, name=f"experiments.{name}") for name, raw in config["experiments"].items()
}


def on_cuda(name):
    """Whether the experiment runs on CUDA (its `device`; the default is the CPU)."""
    return str(EXPERIMENTS[name].get("device") or "cpu").startswith("cuda")


def training_gpus(wc):
    """GPUs of a training job (train_base, search, finetune): the experiment's `gpus` (default 1) where it
    runs on CUDA, else 0. Part of the recipe, not of the machine: batch_size is per process."""
    return int(EXPERIMENTS[wc.exp].get("gpus", 1)) if on_cuda(wc.exp) else 0


def timing_gpus(wc):
    """GPUs of a timing job (latency_table, bench): one where the experiment runs on CUDA, else 0."""
    return 1 if on_cuda(wc.exp) else 0


PYTHON = shlex.quote(sys.executable)
_TORCHRUN = Path(sys.executable).with_name("torchrun")
TORCHRUN = shlex.quote(str(_TORCHRUN)) if _TORCHRUN.exists() else "torchrun"


def darc_command(wc, resources):
    """How a training job runs the `darc` CLI: `python -m darc.cli` on the CPU (one process); under
    `torchrun --standalone --nproc_per_node=<gpu>` (DDP, one process per GPU) where the experiment runs on
    CUDA and the job's `gpu` resource (default: training_gpus; a profile's set-resources may change it)
    gives it GPUs."""
    gpus = int(getattr(resources, "gpu", 0) or 0)
    if on_cuda(wc.exp) and gpus > 0:
        return f"{TORCHRUN} --standalone --nproc_per_node={gpus} -m darc.cli"
    return f"{PYTHON} -m darc.cli"


def seeds(name):
    return experiment_seeds(EXPERIMENTS[name])


def shared_base(name):
    return bool(EXPERIMENTS[name].get("shared_base"))


def base_seeds(name):
    """Seeds that train a base: the first one only where the experiment shares one base (`shared_base`)."""
    return seeds(name)[:1] if shared_base(name) else seeds(name)


def base_weights(wc):
    """The base a job of seed `wc.seed` starts from: its own, or the first seed's where it is shared."""
    seed = seeds(wc.exp)[0] if shared_base(wc.exp) else wc.seed
    return f"{RUNS}/{wc.exp}/seed{seed}/base/model.pt"


def seeded(wc):
    """The experiment of a job, with every seed derived from the job's `seed` wildcard."""
    return experiment_for_seed(EXPERIMENTS[wc.exp], int(wc.seed))


def lams(name):
    return [f"{lam:g}" for lam in EXPERIMENTS[name]["search"]["lams"]]


def first_seed_runs(stage):
    """The first seed's runs of every lambda (the grid the operating points are chosen from)."""

    def inputs(wc):
        return expand(f"{RUNS}/{{exp}}/seed{{seed}}/{stage}/lam{{lam}}/result.json", exp=wc.exp,
                      seed=seeds(wc.exp)[0], lam=lams(wc.exp))

    return inputs


def per_seed(path):
    """`path` (with {exp} and {seed}) for every seed of the experiment."""

    def inputs(wc):
        return expand(path, exp=wc.exp, seed=seeds(wc.exp))

    return inputs


def reseeded_lams(wc):
    """Lambdas of the operating points chosen on the first seed that the other seeds re-run (all, or with
    `selection.reseed_unchanged_points: false` those that change the base; read once the checkpoint has run)."""
    points = checkpoints.select_points.get(exp=wc.exp).output[0]
    return [f"{lam:g}" for lam in points_to_reseed(points, EXPERIMENTS[wc.exp])]


def point_finetunes(wc):
    """Fine-tuned DARC networks: every lambda at the first seed, the chosen ones at the other seeds
    (`reseeded_lams`)."""
    first, *others = seeds(wc.exp)
    grid = expand(f"{RUNS}/{{exp}}/seed{{seed}}/finetune/lam{{lam}}/result.json", exp=wc.exp, seed=first,
                  lam=lams(wc.exp))
    return grid + expand(f"{RUNS}/{{exp}}/seed{{seed}}/finetune/lam{{lam}}/result.json", exp=wc.exp,
                         seed=others, lam=reseeded_lams(wc))


def reference_recipe_choice(wc):
    """The first seed's reference fine-tune, which the other seeds' references take their recipe from (the
    recipe is chosen on the first seed's validation accuracy, as the operating points are); none elsewhere."""
    first = seeds(wc.exp)[0]
    alternatives = (EXPERIMENTS[wc.exp].get("finetune") or {}).get("reference_recipes")
    if wc.point != "reference" or int(wc.seed) == first or not alternatives:
        return []
    return f"{RUNS}/{wc.exp}/seed{first}/finetune/reference/result.json"


def selection_priority(wc):
    """Runs the operating-point choice waits for (the first seed's) before the other seeds' (a higher
    Snakemake priority), so that the peers, which need the choice, start early."""
    return 5 if int(wc.seed) == seeds(wc.exp)[0] else 0


def peer_section(name):
    return EXPERIMENTS[name].get("peers", {})


def grid_peer_runs(wc):
    """The grid peers in `peers.methods` (SSS; DARC at uniform cost or with the params / MACs cost model)
    over the lambda grid at the first seed: they need no chosen point, so they are scheduled from the start."""
    methods = [m for m in peer_section(wc.exp).get("methods", []) if m in GRID_SEARCH_PEERS]
    grid = [f"{float(lam):g}" for lam in peer_section(wc.exp).get("lams") or []] or lams(wc.exp)
    return expand(f"{RUNS}/{wc.exp}/seed{seeds(wc.exp)[0]}/finetune/{{method}}-lam{{lam}}/result.json",
                  method=methods, lam=grid)


def peer_lams(wc):
    """Lambdas of the chosen points the matched peers run at: those whose architecture differs from the
    base's (every chosen one with `peers.at_unchanged_points`)."""
    points = checkpoints.select_points.get(exp=wc.exp).output[0]
    return [f"{lam:g}" for lam in points_with_peers(points, EXPERIMENTS[wc.exp])]


def peer_runs(wc):
    """The peers of the chosen points (the experiment's `peers.methods`): random decisions, from scratch and
    Torch-Pruning, where the point changes the base's architecture (`peer_lams`)."""
    methods = peer_section(wc.exp).get("methods", [])
    chosen = peer_lams(wc)
    runs = []
    if "random" in methods:
        runs += expand(f"{RUNS}/{wc.exp}/seed{{seed}}/random/lam{{lam}}/result.json",
                       seed=peer_seeds(EXPERIMENTS[wc.exp], "random_seeds"), lam=chosen)
    if "scratch" in methods:
        runs += expand(f"{RUNS}/{wc.exp}/seed{{seed}}/scratch/lam{{lam}}/result.json",
                       seed=peer_seeds(EXPERIMENTS[wc.exp], "scratch_seeds"), lam=chosen)
    matches = peer_section(wc.exp).get("prune", {}).get("match", ["latency", "params", "macs"])
    families = [family for family, method in PRUNE_METHODS.items() if method in methods]
    for match in matches:
        runs += expand(f"{RUNS}/{wc.exp}/seed{{seed}}/{{family}}/{match}-lam{{lam}}/finetune/result.json",
                       seed=peer_seeds(EXPERIMENTS[wc.exp], "prune_seeds", match), family=families, lam=chosen)
    return runs


#: Torch-Pruning peers: run-directory family -> the `peers.methods` entry that asks for it, and the pruner
#: (`darc peer prune --pruner`) it uses.
PRUNE_METHODS = {"tp": "torch_pruning", "tpbn": "torch_pruning_bn"}
PRUNE_FAMILIES = {"tp": "group_l1", "tpbn": "bn_scale"}


def prune_start(wc):
    """What a Torch-Pruning peer prunes: the trained base (`tp`), or the BN-scale sparsity phase's output
    (`tpbn`)."""
    if wc.family == "tpbn":
        return f"{RUNS}/{wc.exp}/seed{wc.seed}/tpbn/sparsity/result.json"
    return base_weights(wc)


def point_method(point):
    """The search method of a point: `reference`, `lam<L>` (`darc`) or `<method>-lam<L>` (a grid peer)."""
    return "reference" if point == "reference" else (point.rpartition("lam")[0].rstrip("-") or "darc")


def search_point_options(point):
    """`darc search` options of a point: `--reference`, or the method and its lambda."""
    if point == "reference":
        return "--reference"
    return f"--method {point_method(point)} --lam {point.rpartition('lam')[2]}"


def gated_start(wc):
    """The seed's shared gated start (rule gate) for a search whose candidates are DARC's; none for the
    reference and SSS, which gate only the originals (nothing to distill)."""
    if point_method(wc.point) not in GATED_START_METHODS:
        return []
    return f"{RUNS}/{wc.exp}/seed{wc.seed}/gated/start.pt"


def is_timing(wc):
    """A latency match is timed (one timing job at a time: the `bench` resource)."""
    return wc.match == "latency"


def matching_threads(wc):
    """Cores a Torch-Pruning match holds: a latency match all but one, so that one 1-thread training job
    (the from-scratch peer, on the critical path) runs beside its interleaved A/B timing; the bench, which
    decides whether the match held, re-times it alone."""
    return max(1, workflow.cores - 1) if is_timing(wc) else 1


def versioned_table(wc):
    """The experiment's committed latency table (`search.latency_table`), if it names one."""
    path = EXPERIMENTS[wc.exp].get("search", {}).get("latency_table")
    return [path] if path else []


EXPERIMENT_OUTPUTS = (
    expand(f"{RESULTS}/tables/{{exp}}.csv", exp=EXPERIMENTS)
    + expand(f"{RESULTS}/tables/{{exp}}_points.csv", exp=EXPERIMENTS)
    + expand(f"{RESULTS}/figures/{{exp}}_tradeoff.{{ext}}", exp=EXPERIMENTS, ext=["png", "pdf"])
    + expand(f"{RESULTS}/figures/{{exp}}_gates.{{ext}}", exp=EXPERIMENTS, ext=["png", "pdf"])
    + expand(f"{RESULTS}/figures/{{exp}}_architecture.{{ext}}", exp=EXPERIMENTS, ext=["png", "pdf"])
    + [f"{RESULTS}/tables/summary.md"]
)


wildcard_constraints:
    exp="|".join(EXPERIMENTS) or "none",
    seed=r"\d+",
    lam=r"[0-9.e+-]+",
    point=r"lam[0-9.e+-]+|reference|(?:" + "|".join(GRID_SEARCH_PEERS) + r")-lam[0-9.e+-]+",
    match="latency|params|macs",
    family="tp|tpbn",

"""The ``darc`` command line: ``darc compress | train | gate | search | finetune | peer | bench | budget | models |
datasets``.

``darc compress`` takes a network by name and its trained weights (no config). Every other command takes
``--config FILE`` (an experiment YAML, or a workflow config with ``--experiment KEY``), ``--set key.path=value``
overrides and ``--out DIR``, and prints where its outputs went.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from darc.config import GRID_SEARCH_PEERS, SCALES, ConfigError, load_experiment, load_yaml


def _penalty_weight(text: str) -> float:
    """``--lam``: a finite number >= 0 (a negative penalty weight would make the gates grow)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"the penalty weight must be a finite number >= 0, got {text}")
    return value


def _experiment(args: argparse.Namespace) -> dict[str, Any]:
    """The experiment ``--config`` (and ``--experiment``) name; a workflow config without ``--experiment`` is
    refused with the keys it offers."""
    if args.experiment is None:
        _refuse_workflow_config(args.config)
    return load_experiment(args.config, args.set, key=args.experiment, scale=args.scale)


def _refuse_workflow_config(path: str) -> None:
    """A :class:`ConfigError` if ``path`` is a workflow config (a top-level ``experiments:`` mapping)."""
    experiments = load_yaml(path).get("experiments")
    if isinstance(experiments, dict):
        keys = ", ".join(map(str, experiments)) or "none"
        raise ConfigError(f"{path} is a workflow config: pick one with --experiment KEY (one of {keys})")


def cmd_train(args: argparse.Namespace) -> dict:
    from darc.experiment import train_base

    return train_base(_experiment(args), args.out, scale=args.scale, progress=args.progress)


def cmd_search(args: argparse.Namespace) -> dict:
    from darc.experiment import search

    method = "reference" if args.reference else args.method
    if method == "reference" and args.lam is not None:
        raise ValueError("--reference runs at lambda 0: drop --lam")
    if method != "reference" and args.lam is None:
        raise ValueError(f"--method {method} needs --lam (or pass --reference)")
    return search(_experiment(args), 0.0 if method == "reference" else args.lam, args.base, args.out,
                  scale=args.scale, progress=args.progress, method=method, start=args.start)


def cmd_gate(args: argparse.Namespace) -> dict:
    from darc.experiment import gate

    return gate(_experiment(args), args.base, args.out, scale=args.scale, method=args.method)


def cmd_latency_table(args: argparse.Namespace) -> dict:
    from darc.experiment import measure_latency_table
    from darc.methods import search_config

    exp = _experiment(args)
    if search_config(exp, 0.0).cost_model != "latency":
        raise ValueError("the experiment's search.cost_model is not latency: it reads no latency table")
    report = measure_latency_table(exp, args.out, start_from=args.start_from)
    print(f"wrote {args.out}: base {report['base_total'] * 1e3:.3f} ms, {len(report['slots'])} slots")
    return report


def cmd_finetune(args: argparse.Namespace) -> dict:
    from darc.experiment import finetune_search

    return finetune_search(_experiment(args), args.search_dir, args.out, scale=args.scale, progress=args.progress,
                           base_dir=args.base, recipe_from=args.recipe_from)


def _need(args: argparse.Namespace, *names: str) -> list[Any]:
    """The given options' values, or a one-line error naming the missing ones."""
    missing = ["--" + n.replace("_", "-") for n in names if not getattr(args, n)]
    if missing:
        raise ValueError(f"darc peer {args.method} needs {' and '.join(missing)}")
    return [getattr(args, n) for n in names]


def cmd_peer(args: argparse.Namespace) -> dict:
    from darc.peers import stages

    exp = _experiment(args)
    kw = {"scale": args.scale}
    runs = {
        "random": lambda: stages.random_decisions(exp, *_need(args, "base", "search_dir"), args.out,
                                                  progress=args.progress, start=args.start, **kw),
        "scratch": lambda: stages.from_scratch(exp, *_need(args, "search_dir"), args.out, progress=args.progress,
                                               base_dir=args.base, **kw),
        "bn-sparsity": lambda: stages.bn_sparsity(exp, *_need(args, "base"), args.out, progress=args.progress, **kw),
        "prune": lambda: stages.prune_to_match(exp, *_need(args, "base", "finetune_dir", "match"), args.out,
                                               pruner=args.pruner, **kw),
        "prune-finetune": lambda: stages.prune_finetune(exp, *_need(args, "prune_dir"), args.out,
                                                        progress=args.progress, base_dir=args.base, **kw),
    }
    return runs[args.method]()


def cmd_bench(args: argparse.Namespace) -> Any:
    from darc.bench_stage import bench

    if args.finetuned:
        return bench(_experiment(args), args.base, args.finetuned, Path(args.out) / "bench.csv", scale=args.scale)
    from darc.bench.report import benchmark_model, format_table, write_records

    if args.arch:
        from darc.materialize import load_materialized

        model, name = load_materialized(args.arch, args.weights), str(args.arch)
    else:
        from darc.models import create_model

        model, name = create_model(args.model, **json.loads(args.model_kwargs)), args.model
    shape = tuple(args.input_shape) if args.input_shape else tuple(model.input_shape)
    records = benchmark_model(model, shape, batch_sizes=args.batch_sizes, threads=args.threads,
                              device=args.device, model_name=name, backends=args.backends,
                              peak_memory=args.peak_memory)
    paths = write_records(records, Path(args.out) / "bench")
    print(format_table(records))
    return {"records": [str(p) for p in paths]}


def cmd_budget(args: argparse.Namespace) -> dict:
    from darc.budget import find_lambda

    return find_lambda(_experiment(args), args.base, args.out, scale=args.scale, progress=True)


def cmd_compress(args: argparse.Namespace) -> dict:
    """Compress a network by name (its trained weights from ``--weights``) on a registered dataset to ``--target``."""
    import warnings

    import torch

    from darc.data import get_dataset
    from darc.io import load_weights, safe_torch_load
    from darc.models import model_from_name
    from darc.pipeline import compress
    from darc.target import Target

    target = Target.parse(args.target)  # a bad target is refused before the data is read
    if not args.weights and not args.untrained:
        raise ValueError("pass --weights PATH (the trained network's state dict): compressing untrained weights "
                         "measures nothing; --untrained tries the command on a fresh network anyway")
    subset = (args.subset, args.subset // 5) if args.subset else None
    data = get_dataset(args.data, root=args.data_root, subset=subset, seed=args.seed, val_size=args.val_size)
    c, h, _ = data.meta.input_shape
    model = model_from_name(args.model, num_classes=data.meta.num_classes, in_chans=c, input_size=h,
                            **json.loads(args.model_kwargs))
    if args.weights:
        load_weights(model, safe_torch_load(args.weights), args.weights)
    else:
        warnings.warn(f"{args.model} is untrained (--untrained): its accuracy figures mean nothing", stacklevel=1)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    train = torch.utils.data.DataLoader(data.train, batch_size=args.batch_size, shuffle=True, generator=gen)
    val = torch.utils.data.DataLoader(data.val if data.val is not None else data.test, batch_size=256)
    slots = args.slots if args.slots == "branch" else [p.strip() for p in args.slots.split(",") if p.strip()]
    result = compress(model, train, target=target, val_loader=val, slots=slots, search_steps=args.search_steps,
                      finetune_steps=args.finetune_steps, lam_range=tuple(args.lam_range), threads=args.threads,
                      out_dir=args.out, progress=args.progress)
    rep = result.report
    m = rep["measured"]
    print(f"darc compress: {args.model} -> {m['metric']} ratio {m['ratio']:.2f}x [{m['q25']:.2f}, {m['q75']:.2f}] "
          f"at {args.threads} thread(s); decisions {json.dumps({k: v for k, v in rep['decisions'].items()})}; "
          f"val {rep.get('base_val_acc', float('nan')):.4f} -> {rep.get('val_acc', float('nan')):.4f}")
    return rep


def cmd_models(args: argparse.Namespace) -> None:
    from darc.models import list_models

    print("\n".join(list_models(args.pattern)))


def cmd_datasets(args: argparse.Namespace) -> None:
    from darc.data import list_datasets

    print("\n".join(list_datasets()))


def _common(p: argparse.ArgumentParser, out: bool = True) -> None:
    p.add_argument("--config", required=True, help="experiment YAML (or workflow config with --experiment)")
    p.add_argument("--experiment", default=None, help="key under 'experiments:' in a workflow config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.epochs=2")
    p.add_argument("--scale", default="default", choices=list(SCALES))
    if out:
        p.add_argument("--out", required=True, help="output directory")


def _progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="progress bars (--no-progress in logs, as the workflow runs it)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="darc", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train the base network")
    _common(p)
    _progress(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("search", help="search at one lambda from a trained base and materialise")
    _common(p)
    _progress(p)
    p.add_argument("--lam", type=_penalty_weight, help="penalty weight lambda (>= 0)")
    p.add_argument("--reference", action="store_true",
                   help="the equal-budget reference instead: same pipeline, penalty off, only the originals")
    p.add_argument("--method", default="darc", choices=["darc", *GRID_SEARCH_PEERS],
                   help="darc, or a peer: sss (uniform cost per slot, only the originals), darc_uniform (DARC's "
                        "candidates at uniform cost), darc_params / darc_macs (DARC with that cost model)")
    p.add_argument("--base", required=True, help="the base run directory (holds model.pt)")
    p.add_argument("--start", help="a gated start written by `darc gate` for this base, seed and method: the "
                   "search skips gating and distilling (the same search; refused if made from other settings)")
    p.set_defaults(func=cmd_search)
    p = sub.add_parser("gate", help="gate a trained base and distill its alternatives once: the start every "
                       "lambda's search of one seed can share (`darc search --start`)")
    _common(p, out=False)
    p.add_argument("--base", required=True, help="the base run directory (holds model.pt)")
    p.add_argument("--method", default="darc", choices=["darc", *GRID_SEARCH_PEERS],
                   help="the search method whose candidates it gates")
    p.add_argument("--out", required=True, help="the gated start to write (a .pt file; a .json record beside it)")
    p.set_defaults(func=cmd_gate)
    p = sub.add_parser("latency-table", help="time an experiment's latency lookup table (alone on the machine), "
                       "e.g. to version it as search.latency_table")
    _common(p, out=False)
    p.add_argument("--out", required=True, help="the table (JSON) to write")
    p.add_argument("--start-from", help="a table whose entries are kept (only missing ones are timed)")
    p.set_defaults(func=cmd_latency_table)
    p = sub.add_parser("finetune", help="fine-tune a materialised network without penalty")
    _common(p)
    _progress(p)
    p.add_argument("--search-dir", required=True)
    p.add_argument("--base", help="the trained base the recipe distils from (finetune.distill; default: the "
                   "base the search started from)")
    p.add_argument("--recipe-from", help="the reference only: the first seed's reference fine-tune directory; "
                   "fine-tune with the recipe chosen there instead of trying every recipe")
    p.set_defaults(func=cmd_finetune)
    p = sub.add_parser("peer", help="a peer of one DARC point: random decisions with its counts, its architecture "
                       "from scratch, or Torch-Pruning matched to it (prune, then prune-finetune; for network "
                       "slimming bn-sparsity first, then prune --pruner bn_scale)")
    _common(p)
    _progress(p)
    p.add_argument("method", choices=["random", "scratch", "bn-sparsity", "prune", "prune-finetune"])
    p.add_argument("--search-dir", help="random, scratch: the DARC search run whose decisions / architecture it copies")
    p.add_argument("--base", help="random, bn-sparsity, prune: the base run directory (the network decisions, the "
                   "sparsity phase or pruning start from; for --pruner bn_scale the bn-sparsity output); "
                   "scratch, prune-finetune: the trained base the recipe distils from (default: the one "
                   "DARC's search / the pruning started from)")
    p.add_argument("--finetune-dir", help="prune: the fine-tuned DARC run it is matched to")
    p.add_argument("--match", choices=["latency", "params", "macs"], help="prune: what it is matched on")
    p.add_argument("--pruner", choices=["group_l1", "bn_scale"], default="group_l1",
                   help="prune: group L1 magnitude, or BN-scale network slimming (after bn-sparsity)")
    p.add_argument("--prune-dir", help="prune-finetune: the output of darc peer prune")
    p.add_argument("--start", help="random: the seed's gated start (`darc gate`): DARC's distilled alternatives, "
                   "not distilled again")
    p.set_defaults(func=cmd_peer)
    p = sub.add_parser("budget", help="find lambda for a target ratio by bisection (config key 'budget')")
    _common(p)
    p.add_argument("--base", required=True)
    p.set_defaults(func=cmd_budget)
    p = sub.add_parser("bench", help="benchmark a model, an architecture file, or an experiment's results")
    p.add_argument("--out", required=True)
    p.add_argument("--model", help="a registered model name")
    p.add_argument("--model-kwargs", default="{}", help="JSON kwargs for --model")
    p.add_argument("--arch", help="an architecture.json written by darc search")
    p.add_argument("--weights", help="weights for --arch")
    p.add_argument("--input-shape", type=int, nargs="+", help="C H W (default: the model's)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--backends", nargs="*", default=[], choices=["compile", "onnxruntime"])
    p.add_argument("--peak-memory", action="store_true")
    p.add_argument("--config", help="experiment config, with --base and --finetuned")
    p.add_argument("--experiment", default=None)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--scale", default="default", choices=list(SCALES))
    p.add_argument("--base", help="base run directory (with --finetuned)")
    p.add_argument("--finetuned", nargs="*", help="fine-tune run directories to compare with the base")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("compress", help="compress a torchvision, timm or darc network to a measured target in one "
                                        "call: search lambda, materialise, fine-tune, measure")
    p.add_argument("--model", required=True, help="torchvision:NAME, timm:NAME or a darc model name")
    p.add_argument("--model-kwargs", default="{}", help="JSON keyword arguments for the model's constructor")
    p.add_argument("--weights", default=None, help="the trained network's state dict (.pt / .safetensors)")
    p.add_argument("--untrained", action="store_true", help="compress a fresh network (to try the command)")
    p.add_argument("--data", required=True, help="a registered dataset (darc datasets), e.g. cifar10")
    p.add_argument("--data-root", default=None, help="where the dataset's files are")
    p.add_argument("--subset", type=int, default=None, help="use this many training images (and a fifth as many test)")
    p.add_argument("--val-size", type=int, default=5000, help="training images held out for validation")
    p.add_argument("--target", required=True, help="latency:1.5, latency@64:1.3, bytes:3, macs:2 or lam:2")
    p.add_argument("--slots", default="branch", help="'branch' (residual branches, default) or comma-separated "
                   "module names / glob patterns, e.g. 'features.*' (whole blocks)")
    p.add_argument("--search-steps", type=int, default=300)
    p.add_argument("--finetune-steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lam-range", type=float, nargs=2, default=[0.01, 100.0], metavar=("LOW", "HIGH"))
    p.add_argument("--threads", type=int, default=1, help="threads latency is timed at")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory (searches, fine-tune, result/)")
    _progress(p)
    p.set_defaults(func=cmd_compress)
    p = sub.add_parser("models", help="list registered models")
    p.add_argument("pattern", nargs="?", default="*")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("datasets", help="list registered datasets")
    p.set_defaults(func=cmd_datasets)
    return parser


def _one_line(exc: BaseException) -> str:
    """A KeyError's message without the quotes ``str(KeyError)`` adds."""
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def main(argv: list[str] | None = None) -> int:
    """Run one command; a user's mistake (bad config, missing or corrupt file, weights of another network,
    a malformed architecture file) prints ``darc <command>: error: <message>`` and returns 2."""
    from darc.io import CheckpointError
    from darc.train import distributed as D

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, CheckpointError, FileNotFoundError, KeyError, ValueError) as exc:
        print(f"darc {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    finally:
        D.cleanup()  # a process group started under torchrun
    if getattr(args, "out", None) and D.is_main_process():
        print(f"darc {args.command}: outputs in {Path(args.out).resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

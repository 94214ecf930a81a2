"""Model-zoo study: ``darc compress`` on torchvision and timm CNNs, end to end, on real Fashion-MNIST.

For each network: a short base training on ``fashion-mnist-rgb32`` (Fashion-MNIST zero-padded to 32 x 32 and
repeated to three channels: a stand-in for the users' own data), cached under ``--cache`` for later runs; then
one ``darc compress`` command to ``--target`` (residual branches as slots, through darc's block adapters); then
Torch-Pruning (group L1) pruned to the same measured batch-1 latency as DARC's network and fine-tuned with the
same recipe and steps. Recorded per network: the measured ratio (median and inter-quartile range of interleaved
A/B pairs at one thread) for both, parameters and exact peak tensor memory (batch 1) before and after, the
largest difference between the gated and the materialised network's outputs, whether the output still depends
on the input, validation accuracy (base, after the search, after the fine-tune; Torch-Pruning's after its
fine-tune) and wall times. Writes ``zoo.json`` and ``zoo.md`` under ``--out``.

    python benchmarks/studies/model_zoo.py --out benchmarks/measured/DATE-model-zoo
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

DATA = "fashion-mnist-rgb32"
SHAPE = (3, 32, 32)
MODELS = ("torchvision:resnet18", "torchvision:mobilenet_v2", "torchvision:resnet50", "torchvision:efficientnet_b0",
          "timm:resnet26d")


def _loaders(args: argparse.Namespace) -> tuple[Any, DataLoader, DataLoader]:
    from darc.data import get_dataset

    # the split `darc compress --subset N --val-size V --seed S` makes, so the base never sees its val images
    data = get_dataset(DATA, subset=(args.train_images, args.train_images // 5), seed=args.seed,
                       val_size=args.val_size)
    train = DataLoader(data.train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(args.seed))
    return data, train, DataLoader(data.val, batch_size=256)


def cached_base(name: str, args: argparse.Namespace, train: DataLoader) -> Path:
    """The base's state dict, trained ``--train-steps`` steps (cosine from ``--base-lr``) the first time."""
    from darc.io import atomic_torch_save
    from darc.models import model_from_name
    from darc.train import TrainConfig, fit

    lr = "" if args.base_lr == 0.05 else f"_lr{args.base_lr:g}"  # the first runs' names stay valid
    path = Path(args.cache) / f"{name.replace(':', '_')}_steps{args.train_steps}{lr}_seed{args.seed}.pt"
    if not path.exists():
        torch.manual_seed(args.seed)
        model = model_from_name(name, num_classes=10, in_chans=3)
        cfg = TrainConfig(epochs=1, max_steps_per_epoch=args.train_steps, lr=args.base_lr, schedule="cosine",
                          warmup_epochs=0.05, momentum=0.9, weight_decay=5e-4, evaluate=False, log_every=10**9)
        fit(model, (train, None), cfg, Path(args.cache) / "train" / path.stem, progress=False, resume=False)
        atomic_torch_save(model.state_dict(), path)
    return path


def torch_pruning_match(base: torch.nn.Module, ratio: float, train: DataLoader, val: DataLoader,
                        args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Torch-Pruning (group L1) pruned until its batch-1 latency reaches ``base / ratio``, fine-tuned as DARC."""
    from darc.bench.latency import compare_latency, measure_latency
    from darc.bench.memory import peak_tensor_memory
    from darc.peers.pruning import latency_measure, prune_to_target
    from darc.pipeline import DEFAULT_FINETUNE, _steps, accuracy
    from darc.train import fit

    t0 = time.perf_counter()
    target = measure_latency(base, SHAPE, 1, threads=1, min_run_time=0.2).median_s / ratio
    pruned = prune_to_target(base, torch.randn(1, *SHAPE), latency_measure(SHAPE, 1, threads=1), target, steps=40)
    net = pruned.model
    fit(net, (train, None), _steps(DEFAULT_FINETUNE, train, args.finetune_steps), out / "tp_finetune",
        progress=False, resume=False, teacher=base)
    ab = compare_latency(base, net.eval(), SHAPE, 1, pairs=10, threads=1, min_block_time=0.05)
    return {"reached": pruned.reached, "prune_ratio": pruned.ratio, "ratio": ab.ratio_median, "q25": ab.ratio_q25,
            "q75": ab.ratio_q75, "params": sum(p.numel() for p in net.parameters()),
            "peak_tensor_b1_bytes": peak_tensor_memory(net, SHAPE, 1).net_bytes, "val_acc": accuracy(net, val),
            "seconds": time.perf_counter() - t0}


def one_model(name: str, args: argparse.Namespace, train: DataLoader, val: DataLoader) -> dict[str, Any]:
    from darc.bench.memory import peak_tensor_memory
    from darc.cli import main as darc_main
    from darc.compressor import CompressionResult
    from darc.io import load_weights, safe_torch_load
    from darc.models import model_from_name
    from darc.slots import output_depends_on_input

    weights = cached_base(name, args, train)
    out = Path(args.out) / name.replace(":", "_")
    t0 = time.perf_counter()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = darc_main(["compress", "--model", name, "--weights", str(weights), "--data", DATA, "--subset",
                        str(args.train_images), "--val-size", str(args.val_size), "--seed", str(args.seed),
                        "--target", args.target, "--search-steps", str(args.search_steps), "--finetune-steps",
                        str(args.finetune_steps), "--threads", "1", "--slots", args.slots, "--out", str(out),
                        "--no-progress"])
    seconds = time.perf_counter() - t0
    sys.stderr.write(err.getvalue())
    if rc != 0:
        said = [ln for ln in err.getvalue().splitlines() if ln.startswith("darc compress: error:")]
        return {"model": name, "error": said[-1] if said else f"darc compress exited {rc}",
                "compress_seconds": seconds}
    base = load_weights(model_from_name(name, num_classes=10, in_chans=3), safe_torch_load(weights), weights).eval()
    result = CompressionResult.load(out / "result", base_model=model_from_name(name, num_classes=10, in_chans=3))
    rep = result.report
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    row = {
        "model": name, "target": rep["target"], "measured": rep["measured"], "decisions": rep["decisions"],
        "lam": rep["lam"],
        "lam_path": [(t["lam"], round(t["ratio"], 3), t["reused"]) for t in rep["lam_path"]["tries"]],
        "stopped": rep["lam_path"]["stopped"], "params_base": count(base), "params": count(result.model),
        "peak_tensor_b1_bytes_base": peak_tensor_memory(base, SHAPE, 1).net_bytes,
        "peak_tensor_b1_bytes": peak_tensor_memory(result.model.eval(), SHAPE, 1).net_bytes,
        "output_max_abs_difference": rep.get("output_max_abs_difference"),
        "output_depends_on_input": output_depends_on_input(result.model.eval(), SHAPE),
        "base_val_acc": rep.get("base_val_acc"), "searched_val_acc": rep.get("searched_val_acc"),
        "val_acc": rep.get("val_acc"), "skipped_candidates": rep["skipped_candidates"], "compress_seconds": seconds,
    }
    if args.torch_pruning:
        row["torch_pruning"] = torch_pruning_match(base, rep["measured"]["ratio"], train, val, args, out)
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    head = ("| model | method | measured b1 ratio [q25, q75] | kept / replaced / dropped | params | peak tensor b1 | "
            "val: base / searched / fine-tuned | gated vs plain | depends on input | wall s |\n" + "|---" * 10 + "|\n")
    lines = []
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | DARC | {r['error']} |" + " |" * 8)
            continue
        m, d = r["measured"], r["decisions"]
        mb = lambda b: f"{b / 2**20:.2f} MB"  # noqa: E731
        lines.append(
            f"| {r['model']} | DARC ({r['target']}) | {m['ratio']:.2f}x [{m['q25']:.2f}, {m['q75']:.2f}] | "
            f"{d['kept']} / {d['replaced']} / {d['dropped']} | {r['params_base'] / 1e6:.2f} M -> "
            f"{r['params'] / 1e6:.2f} M | {mb(r['peak_tensor_b1_bytes_base'])} -> {mb(r['peak_tensor_b1_bytes'])} | "
            f"{100 * r['base_val_acc']:.2f} / {100 * r['searched_val_acc']:.2f} / {100 * r['val_acc']:.2f} | "
            f"{r['output_max_abs_difference']:.1e} | {r['output_depends_on_input']} | {r['compress_seconds']:.0f} |")
        tp = r.get("torch_pruning")
        if tp:
            lines.append(
                f"| | Torch-Pruning, same latency | {tp['ratio']:.2f}x [{tp['q25']:.2f}, {tp['q75']:.2f}] | "
                f"channels x{1 - tp['prune_ratio']:.2f} | {tp['params'] / 1e6:.2f} M | "
                f"{mb(tp['peak_tensor_b1_bytes'])} | "
                f"- / - / {100 * tp['val_acc']:.2f} | - | - | {tp['seconds']:.0f} |")
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from darc.io import atomic_write_json, atomic_write_text
    from darc.provenance import environment

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--target", default="latency:1.5")
    ap.add_argument("--cache", default="runs/zoo/bases", help="where trained bases are kept for later runs")
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--base-lr", type=float, default=0.05)
    ap.add_argument("--slots", default="branch", help="darc compress --slots (e.g. 'features.*': whole blocks)")
    ap.add_argument("--search-steps", type=int, default=100)
    ap.add_argument("--finetune-steps", type=int, default=150)
    ap.add_argument("--train-images", type=int, default=10000)
    ap.add_argument("--val-size", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--torch-pruning", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    _, train, val = _loaders(args)
    rows = []
    t0 = time.perf_counter()
    for name in args.models.split(","):
        rows.append(one_model(name, args, train, val))
        print(json.dumps({k: rows[-1].get(k) for k in ("model", "measured", "decisions", "val_acc")}), flush=True)
        record = {"command": vars(args), "environment": environment(), "wall_seconds": time.perf_counter() - t0,
                  "stand_in": f"{DATA}: real Fashion-MNIST, padded to 32 x 32 and repeated to 3 channels", "rows": rows}
        atomic_write_json(record, Path(args.out) / "zoo.json")
        atomic_write_text(markdown(rows), Path(args.out) / "zoo.md")


if __name__ == "__main__":
    main()

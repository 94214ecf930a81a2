"""Model-zoo study: ``darc.compress`` on torchvision and timm CNNs, end to end, on real Fashion-MNIST.

For each network: a short base training (``--train-steps`` steps of SGD, cosine from lr 0.05, batch 64, on
Fashion-MNIST repeated to three channels: a stand-in for the users' own data), then one ``darc.compress`` call to
``--target`` (residual branches as slots: torchvision/timm blocks through darc's block adapters), and a record
of what came out: the decisions, the measured ratio with its spread (interleaved A/B at one thread), the
parameter counts, validation accuracy before / after the search / after the fine-tune, whether the output still
depends on the input, and the wall time. Writes ``zoo.json`` and ``zoo.md`` under ``--out``.

    python benchmarks/model_zoo.py --out benchmarks/measured/DATE-model-zoo \
        --models torchvision:resnet18,torchvision:mobilenet_v2,timm:resnet26d --target latency:1.3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset


class ThreeChannels(Dataset):
    """A grey-scale dataset's images repeated to three channels (torchvision's networks take RGB)."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, y = self.ds[i]
        return x.expand(3, *x.shape[1:]), y


def train_base(model: torch.nn.Module, train: DataLoader, val: DataLoader, steps: int, out: Path) -> float:
    from darc.pipeline import accuracy
    from darc.train import TrainConfig, fit

    cfg = TrainConfig(epochs=1, max_steps_per_epoch=steps, lr=0.05, schedule="cosine", warmup_epochs=0.05,
                      momentum=0.9, weight_decay=5e-4, evaluate=False, log_every=10**9)
    fit(model, (train, None), cfg, out, progress=False, resume=False)
    return accuracy(model, val)


def one_model(name: str, args: argparse.Namespace, data: Any) -> dict[str, Any]:
    from darc import compress
    from darc.models import model_from_name
    from darc.slots import output_depends_on_input

    torch.manual_seed(args.seed)
    train = DataLoader(ThreeChannels(data.train), batch_size=64, shuffle=True,
                       generator=torch.Generator().manual_seed(args.seed))
    val = DataLoader(ThreeChannels(data.val), batch_size=256)
    model = model_from_name(name, num_classes=10, in_chans=3)
    t0 = time.perf_counter()
    out = Path(args.out) / name.replace(":", "_")
    base_acc = train_base(model, train, val, args.train_steps, out / "base")
    t1 = time.perf_counter()
    result = compress(model, train, target=args.target, val_loader=val, search_steps=args.search_steps,
                      finetune_steps=args.finetune_steps, max_tries=args.max_tries, threads=1, out_dir=out,
                      distill_steps=args.distill_steps)
    t2 = time.perf_counter()
    rep = result.report
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    shape = (3, 28, 28)
    return {
        "model": name, "target": rep["target"], "measured": rep["measured"], "decisions": rep["decisions"],
        "lam": rep["lam"],
        "lam_path": [(t["lam"], round(t["ratio"], 3), t["reused"]) for t in rep["lam_path"]["tries"]],
        "stopped": rep["lam_path"]["stopped"], "params_base": count(model), "params": count(result.model),
        "base_val_acc_trained_here": base_acc, "base_val_acc": rep.get("base_val_acc"),
        "searched_val_acc": rep.get("searched_val_acc"), "val_acc": rep.get("val_acc"),
        "output_depends_on_input": output_depends_on_input(result.model.eval(), shape),
        "skipped_candidates": rep["skipped_candidates"], "base_seconds": t1 - t0, "compress_seconds": t2 - t1,
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    head = ("| model | target | measured ratio [q25, q75] | kept / replaced / dropped | params base -> after | "
            "val base / searched / fine-tuned | depends on input | lambda tries | compress s |\n" + "|---" * 9 + "|\n")
    lines = []
    for r in rows:
        m, d = r["measured"], r["decisions"]
        lines.append(
            f"| {r['model']} | {r['target']} | {m['ratio']:.2f}x [{m['q25']:.2f}, {m['q75']:.2f}] | "
            f"{d['kept']} / {d['replaced']} / {d['dropped']} | {r['params_base'] / 1e6:.2f} M -> "
            f"{r['params'] / 1e6:.2f} M | {r['base_val_acc']:.4f} / {r['searched_val_acc']:.4f} / {r['val_acc']:.4f} | "
            f"{r['output_depends_on_input']} | {len(r['lam_path'])} | {r['compress_seconds']:.0f} |")
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from darc.data import get_dataset
    from darc.io import atomic_write_json, atomic_write_text
    from darc.provenance import environment

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default="torchvision:resnet18,torchvision:mobilenet_v2,timm:resnet26d")
    ap.add_argument("--target", default="latency:1.3")
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--search-steps", type=int, default=100)
    ap.add_argument("--finetune-steps", type=int, default=150)
    ap.add_argument("--max-tries", type=int, default=5)
    ap.add_argument("--distill-steps", type=int, default=50)
    ap.add_argument("--train-images", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data = get_dataset("fashion-mnist", subset=(args.train_images, 2000), seed=args.seed, val_size=2000)
    rows = []
    for name in args.models.split(","):
        rows.append(one_model(name, args, data))
        print(json.dumps({k: rows[-1][k] for k in ("model", "measured", "decisions", "val_acc")}), flush=True)
        record = {"command": vars(args), "environment": environment(), "stand_in": "Fashion-MNIST (real), "
                  "repeated to 3 channels, as a stand-in for a user's data", "rows": rows}
        atomic_write_json(record, Path(args.out) / "zoo.json")
        atomic_write_text(markdown(rows), Path(args.out) / "zoo.md")


if __name__ == "__main__":
    main()

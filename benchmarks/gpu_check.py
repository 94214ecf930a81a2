"""One prepared script for a machine with CUDA: the CUDA paths end to end, then report.

Trains a WRN-16-2 on synthetic data with AMP (bf16) + channels_last, searches with the latency cost
model measured on the GPU, materialises, and measures on CUDA: synchronised interleaved A/B latency at
batch 1 and 256, and ``max_memory_allocated`` peak memory. Writes ``<out>/gpu_check.json``.

    python benchmarks/gpu_check.py --out "$OUT"
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from darc.bench.env import bench_environment
from darc.bench.latency import compare_latency
from darc.bench.memory import peak_inference_memory_many
from darc.data import get_dataset
from darc.io import atomic_write_json
from darc.materialize import load_materialized
from darc.models import create_model
from darc.search import SearchConfig, run_search
from darc.train import TrainConfig, fit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda", help="cpu only to dry-run this script")
    ap.add_argument("--n-train", type=int, default=2048)
    args = ap.parse_args()
    dev = args.device
    if dev == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check needs CUDA (use --device cpu for a dry run)")
    out = Path(args.out)
    t0 = time.perf_counter()
    data = get_dataset("synthetic", input_shape=(3, 32, 32), num_classes=10, n_train=args.n_train, n_test=256)
    base = create_model("wrn16_2", in_chans=3, input_size=32, num_classes=10)
    train = TrainConfig(epochs=2, batch_size=128, lr=0.05, schedule="cosine", amp=True, channels_last=True)
    res = fit(base, data, train, out / "base", device=dev, progress=False)
    base = base.to("cpu").float()
    search_train = TrainConfig(epochs=2, batch_size=128, lr=0.02, schedule="constant", amp=True)
    cfg = SearchConfig(lam=2.0, cost_model="latency", cost_device=dev, cost_batch_size=1, lr_gate=0.05,
                       calibration_samples=64, train=search_train, latency_table=str(out / "latency_cuda.json"))
    summary = run_search(base, data, cfg, out / "search", device=dev, progress=False)
    plain = load_materialized(summary["architecture"], summary["weights"]).eval()
    record = {"base_test_acc_amp": res["metrics"]["test_acc"], "search_test_acc": summary["metrics"]["test_acc"],
              "kept": summary["kept"], "arch_cost": summary["arch_cost"]}
    for b in (1, 256):
        ab = compare_latency(base.eval(), plain, (3, 32, 32), b, pairs=20, device=dev)
        record[f"{dev}_speedup_b{b}"] = ab.ratio_median
        record[f"{dev}_speedup_b{b}_iqr"] = ab.ratio_iqr
        record[f"{dev}_base_ms_b{b}"] = ab.median_a_s * 1e3
        mem = peak_inference_memory_many({"base": base, "darc": plain}, (3, 32, 32), b, dev)
        record[f"{dev}_peak_mem_b{b}"] = {k: v.net_bytes for k, v in mem.items()}
        record[f"{dev}_peak_mem_method"] = mem["base"].method
    record["seconds"] = time.perf_counter() - t0
    record["environment"] = bench_environment(dev)
    atomic_write_json(record, out / "gpu_check.json")
    print(record)


if __name__ == "__main__":
    main()

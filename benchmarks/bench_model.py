"""Benchmark one registry model with darc.bench and print the table (a thin script; the CLI is `darc bench`).

Example::

    python benchmarks/bench_model.py wrn16_8 --input-shape 1 28 28 --batch-sizes 1 8 --threads 1 \
        --backends onnxruntime --peak-memory --out results/bench/wrn16_8
"""

from __future__ import annotations

import argparse

import torch

from darc.bench.memory import ModelSpec
from darc.bench.report import benchmark_model, format_table, write_records


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="registry name, e.g. wrn16_8")
    ap.add_argument("--input-shape", type=int, nargs="+", default=[1, 28, 28], help="C H W")
    ap.add_argument("--num-classes", type=int, default=10)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--backends", nargs="*", default=[], help="compile, onnxruntime")
    ap.add_argument("--compile-backend", default="inductor")
    ap.add_argument("--min-run-time", type=float, default=0.5)
    ap.add_argument("--peak-memory", action="store_true")
    ap.add_argument("--out", default=None, help="path stem for .csv/.json")
    args = ap.parse_args(argv)

    from darc.models import create_model

    kw = dict(in_chans=args.input_shape[0], num_classes=args.num_classes, input_size=args.input_shape[-1])
    model = create_model(args.model, **kw)
    records = benchmark_model(
        model,
        args.input_shape,
        batch_sizes=args.batch_sizes,
        device=args.device,
        threads=args.threads,
        dtype=getattr(torch, args.dtype),
        channels_last=args.channels_last,
        backends=args.backends,
        model_name=args.model,
        min_run_time=args.min_run_time,
        peak_memory=args.peak_memory,
        memory_spec=ModelSpec.registry(args.model, **kw),
        backend_options={"compile": {"compile_backend": args.compile_backend}},
    )
    print(format_table(records))
    if args.out:
        for p in write_records(records, args.out):
            print("wrote", p)
    return records


if __name__ == "__main__":
    main()

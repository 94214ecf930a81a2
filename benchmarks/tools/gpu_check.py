"""Paper-path rehearsal for one lent GPU: every CUDA path DARC's paper runs take, stage by stage, in minutes.

For each of the paper's two base networks at its paper input size, on synthetic data: a few steps of base
training (AMP bf16 + channels_last), the search with the latency cost model measured on the GPU,
materialisation, a few fine-tuning steps, then synchronised interleaved A/B latency (batch 1 and a large
batch) and ``max_memory_allocated`` peak inference memory on CUDA. Then a 2-process search (torchrun,
gloo, both ranks on ``cuda:0``). Multi-GPU NCCL is out of scope (one GPU).

After every stage (and before it, as ``running``) the record is rewritten atomically to
``<out>/gpu_check.json``, so a run killed by a timeout still leaves what it measured. Each stage records
its seconds, status (``ok``; ``failed: <exception, one line>`` with a traceback tail; ``skipped (...)``),
throughput (img/s) and, on CUDA, ``torch.cuda.max_memory_allocated`` during the stage. A failed stage
does not stop later ones: a search without a trained base searches an untrained one; what needs a
missing result is skipped. A stage still to start once ``--budget-s`` seconds have passed, or (on CUDA,
full size) one whose estimate below would end past the budget, is ``skipped (budget)``; so with the
default 220 s even a stage overrunning its estimate by half ends before 4 min.

Stages and estimated seconds on one H100 (the whole run, CUDA init and imports included, about 2.5 min;
the default budget of 220 s keeps it under 4 min):

=================  =====  =============================================================================
stage              est s  what
=================  =====  =============================================================================
cuda                   5  device facts, bf16 autocast conv fwd/bwd in channels_last, matmul vs fp32
wrn_train              8  WRN-28-10, 3x32x32 / 10 classes: 15 steps at batch 128 (~2.5k img/s), eval
wrn_search            30  gate (distil 2 steps, on CPU), 12 slots x 4 latency variants timed on CUDA
                          (~0.3 s each), 10 search steps at 128, materialise
wrn_finetune           6  load the materialised net, 10 steps at 128
wrn_bench              5  A/B latency at batch 1 and 128 (fp32) and 128 (bf16, channels_last); memory
resnet_train          10  ResNet-50-v1d, 3x224x224 / 1000 classes: 12 steps at batch 64 (~2.5k img/s)
resnet_search         35  16 slots x 4 latency variants on CUDA, 8 search steps at 64
resnet_finetune        6  8 steps at 64
resnet_bench           5  A/B latency at batch 1 and 64 (fp32) and 64 (bf16, channels_last); memory
ddp_search            25  torchrun 2 processes (gloo) on cuda:0: WRN-10-2 train, latency search, finetune
=================  =====  =============================================================================

Run (repo root, the repo's venv)::

    python benchmarks/tools/gpu_check.py --out "$OUT"                  # the GPU rehearsal
    python benchmarks/tools/gpu_check.py --out /tmp/g --device cpu --tiny   # CPU dry run, seconds
    python benchmarks/tools/gpu_check.py --out "$OUT" --stages cuda,wrn    # a subset (stage or group names)
    python benchmarks/tools/gpu_check.py --out "$OUT" --plans extended --stages wrn,resnet --budget-s 400
                                                                 # the extended stand-ins' GPU throughput
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from darc.bench.env import bench_environment
from darc.bench.latency import compare_latency
from darc.bench.memory import peak_inference_memory_many
from darc.data import get_dataset
from darc.io import atomic_write_json
from darc.materialize import load_materialized
from darc.models import create_model
from darc.search import SearchConfig, finetune, run_search
from darc.train import TrainConfig, fit
from darc.train.history import LOG_JSONL

RECORD = "gpu_check.json"
NCCL_NOTE = "untested (one GPU)"
#: estimated seconds per stage on one H100 (the module docstring's table)
ESTIMATES_H100_S = {
    "cuda": 5,
    "wrn_train": 8,
    "wrn_search": 30,
    "wrn_finetune": 6,
    "wrn_bench": 5,
    "resnet_train": 10,
    "resnet_search": 35,
    "resnet_finetune": 6,
    "resnet_bench": 5,
    "ddp_search": 25,
}
#: the paper's candidates less the second narrow ratio (the same code path as the first)
CANDIDATES: list[Any] = ["original", {"alternative": "narrow", "ratio": 0.5}, "dwsep", "identity"]
TINY_CANDIDATES: list[Any] = ["original", {"alternative": "narrow", "ratio": 0.5}, "identity"]


@dataclass(frozen=True)
class Plan:
    """One base network, its synthetic data and the step counts of every stage."""

    key: str
    model: str
    model_kwargs: dict[str, Any]
    input_shape: tuple[int, int, int]
    num_classes: int
    batch: int
    train_steps: int
    search_steps: int
    finetune_steps: int
    bench_batches: tuple[int, ...]
    n_test: int
    lr: float = 0.02
    calibration_samples: int = 8
    distill_steps: int = 2
    candidates: list[Any] = field(default_factory=lambda: list(CANDIDATES))
    max_slots: int | None = None  # search only the first slots (tiny runs)
    pairs: int = 10
    memory_batches: tuple[int, ...] | None = None  # default: bench_batches
    search_epochs: int = 1  # 2+: the epochs after the first give the search's steady-state throughput
    search_weights: str = "train"  # SearchConfig.weights ("frozen": only the gates learn, as the CPU scales)

    @property
    def n_train(self) -> int:
        return self.batch * max(self.train_steps, self.search_steps, self.finetune_steps)


def paper_plans() -> list[Plan]:
    """WRN-28-10 on 3x32x32 / 10 classes and ResNet-50-v1d on 3x224x224 / 1000 classes."""
    return [
        Plan(
            "wrn",
            "wrn28_10",
            {"in_chans": 3, "input_size": 32, "num_classes": 10},
            (3, 32, 32),
            10,
            batch=128,
            train_steps=15,
            search_steps=10,
            finetune_steps=10,
            bench_batches=(1, 128),
            n_test=256,
        ),
        Plan(
            "resnet",
            "resnet50d",
            {"in_chans": 3, "input_size": 224, "num_classes": 1000},
            (3, 224, 224),
            1000,
            batch=64,
            train_steps=12,
            search_steps=8,
            finetune_steps=8,
            bench_batches=(1, 64),
            n_test=128,
        ),
    ]


def tiny_plans() -> list[Plan]:
    """CPU-sized stand-ins (seconds): WRN-16-1 at 8x8 and a bottleneck ResNet-50-d at 1/8 width, 16x16."""
    common = dict(
        batch=8,
        train_steps=2,
        search_steps=2,
        finetune_steps=1,
        bench_batches=(1, 8),
        n_test=8,
        calibration_samples=4,
        distill_steps=1,
        candidates=list(TINY_CANDIDATES),
        max_slots=2,
        pairs=3,
        memory_batches=(8,),
        search_epochs=2,
    )
    return [
        Plan("wrn", "wrn16_1", {"in_chans": 3, "input_size": 8, "num_classes": 4}, (3, 8, 8), 4, **common),
        Plan(
            "resnet", "resnet50d_small", {"in_chans": 3, "input_size": 16, "num_classes": 4}, (3, 16, 16), 4, **common
        ),
    ]


def extended_plans() -> list[Plan]:
    """The ``extended`` scale's stand-ins at Fashion-MNIST's 1x28x28 and the protocol's batches, with more
    steps: their GPU throughput, from which the extended scale's GPU hours are estimated (docs/decisions/sizing.md)."""
    common = dict(train_steps=60, search_steps=40, finetune_steps=40, n_test=512, pairs=10,
                  search_epochs=2, search_weights="frozen")
    return [
        Plan(
            "wrn",
            "wide_resnet",
            {"depth": 28, "widen_factor": 2, "in_chans": 1, "input_size": 28, "num_classes": 10},
            (1, 28, 28),
            10,
            batch=128,
            bench_batches=(1, 128),
            **common,
        ),
        Plan(
            "resnet",
            "resnet50d_small",
            {"width_mult": 0.25, "in_chans": 1, "input_size": 28, "num_classes": 10},
            (1, 28, 28),
            10,
            batch=128,
            bench_batches=(1, 64),
            **common,
        ),
    ]


#: ``--plans``: which networks the stages run (``--tiny`` picks ``tiny``, the CPU dry run)
PLAN_SETS: dict[str, Callable[[], list[Plan]]] = {
    "paper": paper_plans,
    "extended": extended_plans,
    "tiny": tiny_plans,
}


@dataclass
class Context:
    """What the stages share: options, the record being written, and results later stages use."""

    out: Path
    device: str
    tiny: bool
    budget_s: float
    plans: dict[str, Plan]
    record: dict[str, Any]
    t0: float = field(default_factory=time.perf_counter)
    state: dict[str, Any] = field(default_factory=dict)
    partial: dict[str, Any] = field(default_factory=dict)  # the running stage's record (kept if it fails)

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def save(self) -> None:
        self.record["elapsed_s"] = round(self.elapsed(), 3)
        atomic_write_json(self.record, self.out / RECORD)


class Skip(Exception):
    """Raised by a stage that cannot run (a result it needs is missing): status ``skipped (<reason>)``."""


@dataclass(frozen=True)
class Stage:
    name: str
    group: str
    fn: Callable[[Context], dict[str, Any]]


# ---------------------------------------------------------------------------------------------- helpers


def sync(ctx: Context) -> None:
    if ctx.cuda:
        torch.cuda.synchronize()


def one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0] if msg else ''}".strip()


def dataset(plan: Plan) -> Any:
    return get_dataset(
        "synthetic",
        input_shape=plan.input_shape,
        num_classes=plan.num_classes,
        n_train=plan.n_train,
        n_test=plan.n_test,
    )


def to_cpu(model: nn.Module) -> nn.Module:
    """Back on the CPU in fp32 and contiguous memory format (fit may leave channels_last)."""
    return model.to("cpu").float().to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]


def train_config(plan: Plan, steps: int, *, lr: float | None = None, epochs: int = 1) -> TrainConfig:
    return TrainConfig(
        epochs=epochs,
        batch_size=plan.batch,
        lr=lr or plan.lr,
        schedule="constant",
        amp=True,
        channels_last=True,
        max_steps_per_epoch=steps,
        log_every=10_000,
    )


class StepClock:
    """``fit``'s ``on_step`` hook: a synchronised timestamp per step, for the steady-state throughput."""

    def __init__(self, ctx: Context, batch: int) -> None:
        self.ctx, self.batch, self.times = ctx, batch, [time.perf_counter()]

    def __call__(self, epoch: int, step: int, stats: Any) -> None:
        sync(self.ctx)
        self.times.append(time.perf_counter())

    def img_per_s(self, skip: int = 3) -> float | None:
        """Images per second over the steps after the first ``skip`` (warm-up, autotuning)."""
        t = self.times[min(skip, len(self.times) - 2) :]
        if len(t) < 2 or t[-1] <= t[0]:
            return None
        return (len(t) - 1) * self.batch / (t[-1] - t[0])


def epoch_throughput(log_jsonl: Path) -> list[float]:
    """Training img/s of each epoch in a ``fit`` log (the first includes warm-up: cuDNN plans, allocator)."""
    if not log_jsonl.exists():
        return []
    rows = [json.loads(line) for line in log_jsonl.read_text().splitlines() if line.strip()]
    return [float(r["img_per_s"]) for r in rows if isinstance(r.get("img_per_s"), (int, float))]


def state(ctx: Context, plan: Plan) -> dict[str, Any]:
    return ctx.state.setdefault(plan.key, {})


# ----------------------------------------------------------------------------------------------- stages


def stage_cuda(ctx: Context) -> dict[str, Any]:
    """Device facts, and a bf16 autocast conv forward/backward in channels_last plus a matmul vs fp32."""
    import torch.distributed as dist

    rec: dict[str, Any] = {
        "cuda_available": torch.cuda.is_available(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "gloo_available": dist.is_gloo_available(),
        "nccl_available": dist.is_available() and dist.is_nccl_available(),
        "nccl_multi_gpu": NCCL_NOTE,
    }
    if ctx.cuda:
        p = torch.cuda.get_device_properties(0)
        rec.update(
            device_count=torch.cuda.device_count(),
            name=p.name,
            capability=f"{p.major}.{p.minor}",
            total_memory_bytes=p.total_memory,
            bf16_supported=torch.cuda.is_bf16_supported(),
            cudnn_version=torch.backends.cudnn.version(),
            cudnn_enabled=torch.backends.cudnn.enabled,
            cudnn_benchmark=torch.backends.cudnn.benchmark,
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            tf32_cudnn=torch.backends.cudnn.allow_tf32,
        )
    dev = torch.device(ctx.device)
    g = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(16, 32, 3, padding=1).to(dev).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    x = torch.randn(8, 16, 32, 32, generator=g).to(dev).to(memory_format=torch.channels_last)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=ctx.cuda):
        y = conv(x)
    y.float().pow(2).mean().backward()
    sync(ctx)
    rec["autocast_conv_dtype"] = str(y.dtype)
    rec["conv_out_channels_last"] = y.is_contiguous(memory_format=torch.channels_last)
    rec["conv_grad_finite"] = bool(torch.isfinite(conv.weight.grad).all())  # type: ignore[arg-type]
    a, b = torch.randn(256, 256, generator=g), torch.randn(256, 256, generator=g)
    ref = a.double() @ b.double()
    got = (a.to(dev) @ b.to(dev)).cpu().double()
    rec["matmul_rel_err_vs_fp64"] = float((got - ref).norm() / ref.norm())
    return rec


def stage_train(ctx: Context, plan: Plan) -> dict[str, Any]:
    """A few steps of base training (AMP + channels_last), then the test set."""
    data = dataset(plan)
    base = create_model(plan.model, **plan.model_kwargs)
    clock = StepClock(ctx, plan.batch)
    res = fit(
        base,
        data,
        train_config(plan, plan.train_steps, lr=plan.lr),
        ctx.out / plan.key / "base",
        device=ctx.device,
        progress=False,
        resume=False,
        on_step=clock,
    )
    m = res["metrics"]
    st = state(ctx, plan)
    st["data"], st["base"] = data, to_cpu(base)
    return {
        "model": plan.model,
        "input_shape": list(plan.input_shape),
        "num_classes": plan.num_classes,
        "batch": plan.batch,
        "steps": m.get("steps"),
        "params": sum(p.numel() for p in base.parameters()),
        "img_per_s": clock.img_per_s(),
        "img_per_s_incl_warmup": m.get("img_per_s"),
        "train_loss": m.get("train_loss"),
        "test_acc": m.get("test_acc"),
        "train_seconds": m.get("seconds"),
    }


def stage_search(ctx: Context, plan: Plan) -> dict[str, Any]:
    """Gate, measure latency costs on the device, search a few steps; ``run_search`` materialises."""
    st = state(ctx, plan)
    data = st["data"] if "data" in st else dataset(plan)
    base = st.get("base")
    base_note = "trained" if base is not None else "untrained (no base from the train stage)"
    if base is None:
        base = create_model(plan.model, **plan.model_kwargs)
    slots: Any = "branch"
    if plan.max_slots is not None:
        slots = list(base.slot_names("branch"))[: plan.max_slots]  # type: ignore[operator]
    out = ctx.out / plan.key / "search"
    cfg = SearchConfig(
        lam=2.0,
        cost_model="latency",
        cost_device=ctx.device,
        cost_batch_size=1,
        slots=slots,
        candidates=plan.candidates,
        calibration_samples=plan.calibration_samples,
        distill_steps=plan.distill_steps,
        lr_gate=0.05,
        log_gates_every=None,
        latency_table=str(ctx.out / plan.key / "latency_table.json"),
        weights=plan.search_weights,
        train=train_config(plan, plan.search_steps, epochs=plan.search_epochs),
    )
    t = time.perf_counter()
    summary = run_search(base, data, cfg, out, device=ctx.device, progress=False, resume=False)
    seconds = time.perf_counter() - t
    st["data"], st["base"] = data, base
    st["arch"], st["weights"] = summary["architecture"], summary["weights"]
    st["compressed"] = load_materialized(summary["architecture"], summary["weights"]).eval()
    costs = json.loads((out / "costs.json").read_text())
    m = summary["metrics"]
    per_epoch = epoch_throughput(out / "train" / LOG_JSONL)
    return {
        "base": base_note,
        "seconds_run_search": seconds,
        "cost_unit": costs.get("unit"),
        "base_latency_s": costs.get("base_total"),
        "slots": len(summary["kept"]),
        "zero_gates": sum(1 for r in summary["final_gates"] if r["gate"] == 0.0),
        "arch_cost": summary["arch_cost"],
        "decisions": summary["decisions"],
        "weights": plan.search_weights,
        "epoch_img_per_s": per_epoch,
        "img_per_s": per_epoch[-1] if len(per_epoch) > 1 else None,  # steady state: after a whole epoch
        "img_per_s_incl_warmup": per_epoch[0] if per_epoch else m.get("img_per_s"),
        "train_seconds": m.get("seconds"),
        "steps": m.get("steps"),
        "test_acc": m.get("test_acc"),
        "params_compressed": sum(p.numel() for p in st["compressed"].parameters()),
    }


def stage_finetune(ctx: Context, plan: Plan) -> dict[str, Any]:
    """A few fine-tuning steps of the materialised network (``darc.search.finetune``)."""
    st = state(ctx, plan)
    if "arch" not in st:
        raise Skip("no materialised network from the search stage")
    model, res = finetune(
        st["arch"],
        st["weights"],
        st["data"],
        train_config(plan, plan.finetune_steps, lr=0.01),
        ctx.out / plan.key / "finetune",
        device=ctx.device,
        progress=False,
        resume=False,
    )
    st["compressed"] = to_cpu(model).eval()
    m = res["metrics"]
    return {
        "steps": m.get("steps"),
        "img_per_s_incl_warmup": m.get("img_per_s"),
        "train_loss": m.get("train_loss"),
        "test_acc": m.get("test_acc"),
        "train_seconds": m.get("seconds"),
    }


def stage_bench(ctx: Context, plan: Plan) -> dict[str, Any]:
    """Synchronised interleaved A/B latency (base vs compressed) and peak inference memory on the device."""
    st = state(ctx, plan)
    if "compressed" not in st or "base" not in st:
        raise Skip("no compressed network from the search stage")
    base, small = st["base"].eval(), st["compressed"].eval()
    rec: dict[str, Any] = {}
    runs = [(b, torch.float32, False) for b in plan.bench_batches]
    runs.append((max(plan.bench_batches), torch.bfloat16, True))
    for b, dtype, cl in runs:
        tag = f"b{b}" + ("_bf16_cl" if dtype == torch.bfloat16 else "")
        ab = compare_latency(
            base, small, plan.input_shape, b, pairs=plan.pairs, device=ctx.device, dtype=dtype, channels_last=cl
        )
        rec[tag] = {
            "speedup": ab.ratio_median,
            "speedup_iqr": ab.ratio_iqr,
            "base_ms": ab.median_a_s * 1e3,
            "darc_ms": ab.median_b_s * 1e3,
            "base_img_per_s": b / ab.median_a_s,
            "darc_img_per_s": b / ab.median_b_s,
            "pairs": ab.pairs,
        }
        print(
            f"  {plan.key} {tag}: base {b / ab.median_a_s:.0f} img/s, darc {b / ab.median_b_s:.0f} img/s, "
            f"speed-up {ab.ratio_median:.3f}",
            flush=True,
        )
    if ctx.cuda:  # peak_inference_memory_many resets the peak statistics
        rec["max_memory_allocated_latency_bytes"] = torch.cuda.max_memory_allocated()
    for b in plan.memory_batches or plan.bench_batches:
        mem = peak_inference_memory_many({"base": base, "darc": small}, plan.input_shape, b, ctx.device)
        rec[f"peak_mem_b{b}"] = {k: {"net_bytes": v.net_bytes, "peak_bytes": v.peak_bytes} for k, v in mem.items()}
        rec["peak_mem_method"] = mem["base"].method
        print(
            f"  {plan.key} peak memory b{b}: base {mem['base'].net_bytes / 2**20:.1f} MiB, "
            f"darc {mem['darc'].net_bytes / 2**20:.1f} MiB",
            flush=True,
        )
    return rec


def torchrun_command() -> list[str]:
    """``torchrun`` next to this interpreter, else ``python -m torch.distributed.run``."""
    exe = Path(sys.executable).parent / "torchrun"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


def stage_ddp_search(ctx: Context) -> dict[str, Any]:
    """A 2-process search over gloo (both ranks on ``cuda:0``, or the CPU): did it finish, same gates?"""
    out = ctx.out / "ddp"
    out.mkdir(parents=True, exist_ok=True)
    repo = Path(__file__).resolve().parents[2]
    cmd = [
        *torchrun_command(),
        "--standalone",
        "--nproc_per_node=2",
        str(Path(__file__).resolve()),
        "--ddp-job",
        str(out),
        "--device",
        ctx.device,
        *(["--tiny"] if ctx.tiny else []),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": f"{repo}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OMP_NUM_THREADS": "1" if not ctx.cuda else "8",  # torchrun's default is 1 (CPU gating on CUDA)
    }
    if not ctx.cuda:
        env["CUDA_VISIBLE_DEVICES"] = ""
    timeout = max(ctx.budget_s - ctx.elapsed(), 30.0)
    rec = ctx.partial  # kept in the record if the job fails
    rec.update(command=" ".join(cmd), timeout_s=round(timeout, 1), backend="gloo")
    proc = subprocess.Popen(
        cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
        rec["timed_out"] = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and the two ranks it started
        output, _ = proc.communicate()
        rec["timed_out"] = True
    rec["returncode"] = proc.returncode
    ranks = [json.loads(p.read_text()) if p.exists() else None for p in (out / "rank0.json", out / "rank1.json")]
    rec["finished"] = proc.returncode == 0 and all(r is not None for r in ranks)
    rec["same_gates"] = bool(ranks[0] and ranks[1] and ranks[0]["gates"] == ranks[1]["gates"])
    rec["ranks"] = [{k: v for k, v in r.items() if k != "gates"} if r else None for r in ranks]
    metrics = out / "search" / "train" / "metrics.json"
    rec["search_world_size"] = json.loads(metrics.read_text())["world_size"] if metrics.exists() else None
    if not rec["finished"]:
        rec["output_tail"] = output[-3000:]
        raise RuntimeError(
            f"the 2-process search did not finish (returncode {proc.returncode}, "
            f"timed out {rec['timed_out']}); see output_tail"
        )
    if not rec["same_gates"]:
        raise RuntimeError("the two ranks ended with different gates")
    return rec


def ddp_job(out: Path, device: str, tiny: bool) -> None:
    """One rank of the 2-process job (run by torchrun): train, search with latency costs, fine-tune, all
    under DDP over gloo; both ranks use ``cuda:0`` on a one-GPU machine. Writes ``out/rank{R}.json``."""
    import torch.distributed as dist

    from darc.train import distributed as D

    cuda = device == "cuda"
    if cuda:
        torch.cuda.set_device(0)  # darc.train.distributed would pick cuda:LOCAL_RANK (no cuda:1 here)
    dist.init_process_group("gloo")  # before darc's init_distributed, which then leaves it as is
    rank, world = dist.get_rank(), dist.get_world_size()
    dev = "cuda:0" if cuda else "cpu"
    size, batch, steps = (8, 8, 2) if tiny else (32, 64, 4)
    plan = Plan(
        "ddp",
        "wrn10_2",
        {"in_chans": 3, "input_size": size, "num_classes": 10},
        (3, size, size),
        10,
        batch=batch,
        train_steps=steps,
        search_steps=steps,
        finetune_steps=steps,
        bench_batches=(1,),
        n_test=batch,
        calibration_samples=8,
        distill_steps=2,
        candidates=list(TINY_CANDIDATES),
        lr=0.05,
    )
    data = get_dataset(
        "synthetic", input_shape=plan.input_shape, num_classes=10, n_train=plan.n_train * world, n_test=plan.n_test
    )
    t0 = time.perf_counter()
    base = create_model(plan.model, **plan.model_kwargs)
    fit(base, data, train_config(plan, steps), out / "base", device=dev, progress=False, resume=False)
    base = to_cpu(base)
    cfg = SearchConfig(
        lam=5.0,
        cost_model="latency",
        cost_device=dev,
        candidates=plan.candidates,
        calibration_samples=plan.calibration_samples,
        distill_steps=plan.distill_steps,
        lr_gate=0.1,
        log_gates_every=None,
        latency_table=str(out / "latency_table.json"),
        train=train_config(plan, steps, epochs=2),
    )
    summary = run_search(base, data, cfg, out / "search", device=dev, progress=False, resume=False)
    mat = out / "search" / "materialized"
    _, res = finetune(
        mat / "architecture.json",
        mat / "weights.pt",
        data,
        train_config(plan, steps, lr=0.01),
        out / "finetune",
        device=dev,
        progress=False,
        resume=False,
    )
    gates = [(r["slot"], r["candidate"], r["gate"]) for r in summary["final_gates"]]
    atomic_write_json(
        {
            "rank": rank,
            "world_size": world,
            "device": dev,
            "backend": dist.get_backend(),
            "gates": gates,
            "zero_gates": sum(1 for g in gates if g[2] == 0.0),
            "finetune_test_acc": res["metrics"].get("test_acc"),
            "seconds": time.perf_counter() - t0,
        },
        out / f"rank{rank}.json",
    )
    D.barrier()
    D.cleanup()


# --------------------------------------------------------------------------------------------- registry


def build_stages() -> list[Stage]:
    """Every stage, in run order: the CUDA checks, each paper network's four stages, the 2-process search."""
    stages = [Stage("cuda", "cuda", stage_cuda)]
    for key in ("wrn", "resnet"):
        for what, fn in (
            ("train", stage_train),
            ("search", stage_search),
            ("finetune", stage_finetune),
            ("bench", stage_bench),
        ):
            stages.append(Stage(f"{key}_{what}", key, lambda ctx, fn=fn, key=key: fn(ctx, ctx.plans[key])))
    stages.append(Stage("ddp_search", "ddp", stage_ddp_search))
    return stages


STAGES = build_stages()


def select(names: str | None) -> set[str]:
    """Stage names picked by a comma list of stage or group names (all by default)."""
    if not names:
        return {s.name for s in STAGES}
    picked: set[str] = set()
    for n in (x.strip() for x in names.split(",") if x.strip()):
        hit = {s.name for s in STAGES if n in (s.name, s.group)}
        if not hit:
            raise SystemExit(
                f"unknown stage {n!r}; stages: {[s.name for s in STAGES]} (or a group: cuda, wrn, resnet, ddp)"
            )
        picked |= hit
    return picked


def run_stage(ctx: Context, stage: Stage) -> None:
    """Run one stage and record it (the record is written before and after)."""
    rec: dict[str, Any] = {"status": "running", "estimate_h100_s": ESTIMATES_H100_S.get(stage.name)}
    ctx.record["stages"][stage.name] = ctx.partial = rec
    expected = 0 if ctx.tiny or not ctx.cuda else ESTIMATES_H100_S.get(stage.name, 0)
    if ctx.elapsed() >= ctx.budget_s or ctx.elapsed() + expected > ctx.budget_s:
        rec.update(status="skipped (budget)", seconds=0.0, started_after_s=round(ctx.elapsed(), 3))
        ctx.save()
        return
    ctx.save()
    print(f"[{ctx.elapsed():7.1f} s] {stage.name} ...", flush=True)
    if ctx.cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    try:
        result = stage.fn(ctx)
        sync(ctx)
        rec.update(result)
        rec["status"] = "ok"
    except Skip as exc:
        rec["status"] = f"skipped ({exc})"
    except Exception as exc:  # noqa: BLE001 - recorded; later stages still run
        rec["status"] = f"failed: {one_line(exc)}"
        rec["traceback_tail"] = traceback.format_exc().splitlines()[-12:]
    rec["seconds"] = round(time.perf_counter() - t, 3)
    if ctx.cuda:
        rec["max_memory_allocated_bytes"] = torch.cuda.max_memory_allocated()
    ctx.save()
    print(
        f"[{ctx.elapsed():7.1f} s] {stage.name}: {rec['status']} in {rec['seconds']:.1f} s"
        + (f", {rec['img_per_s']:.0f} img/s" if isinstance(rec.get("img_per_s"), float) else "")
        + (f", peak {rec['max_memory_allocated_bytes'] / 2**30:.2f} GiB" if ctx.cuda else ""),
        flush=True,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="folder for gpu_check.json and the stages' files (required)")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="cpu: a dry run of this script")
    ap.add_argument("--stages", default=None, help=f"comma list of stages or groups; all: {[s.name for s in STAGES]}")
    ap.add_argument("--tiny", action="store_true", help="CPU-sized models, inputs and steps (a dry run in seconds)")
    ap.add_argument(
        "--plans",
        default="paper",
        choices=sorted(PLAN_SETS),
        help="the paper's networks (default), or the extended scale's stand-ins (GPU throughput for its estimate)",
    )
    ap.add_argument("--budget-s", type=float, default=220.0, help="stages still to start after this are skipped")
    ap.add_argument("--ddp-job", default=None, help=argparse.SUPPRESS)  # one torchrun rank (stage ddp_search)
    args = ap.parse_args(argv)
    if args.ddp_job is None and not args.out:
        ap.error("--out is required")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the selected stages; returns the record also written to ``<out>/gpu_check.json``."""
    args = parse_args(argv)
    if args.ddp_job is not None:
        ddp_job(Path(args.ddp_job), args.device, args.tiny)
        return {}
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check needs CUDA (use --device cpu for a dry run)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    picked = select(args.stages)
    plan_set = "tiny" if args.tiny else args.plans
    plans = {p.key: p for p in PLAN_SETS[plan_set]()}
    record: dict[str, Any] = {
        "script": "benchmarks/tools/gpu_check.py",
        "argv": list(sys.argv[1:] if argv is None else argv),
        "device": args.device,
        "tiny": args.tiny,
        "plan_set": plan_set,
        "budget_s": args.budget_s,
        "nccl_multi_gpu": NCCL_NOTE,
        "environment": None,
        "plans": {k: {**vars(p), "n_train": p.n_train} for k, p in plans.items()},
        "stages": {},
        "finished": False,
    }
    ctx = Context(out, args.device, args.tiny, args.budget_s, plans, record)
    try:
        record["environment"] = bench_environment(args.device)
    except Exception as exc:  # noqa: BLE001 - the rest of the record is still worth having
        record["environment"] = {"error": one_line(exc)}
    ctx.save()
    for stage in STAGES:
        if stage.name in picked:
            run_stage(ctx, stage)
        else:
            record["stages"][stage.name] = {"status": "skipped (not selected)"}
    record["finished"] = True
    record["failed"] = [n for n, r in record["stages"].items() if r["status"].startswith("failed")]
    ctx.save()
    print(json.dumps({n: r["status"] for n, r in record["stages"].items()}, indent=1), flush=True)
    print(f"gpu_check: {ctx.elapsed():.1f} s, record in {out / RECORD}", flush=True)
    return record


if __name__ == "__main__":
    sys.exit(1 if main().get("failed") else 0)

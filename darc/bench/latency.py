"""The timing protocol: one place that says how darc measures wall-clock latency.

Protocol (every function here follows it):

1. The model is put in eval mode (a copy is made only if it must move to another device, dtype or
   memory format; the caller's model is otherwise left as it was, training flag restored).
2. One input ``torch.randn(batch_size, *input_shape)`` is made once, on the device, in the dtype
   (and ``channels_last`` memory format if asked) - no host-to-device copy is timed.
3. The thread count is set explicitly (``torch.set_num_threads`` and the Timer's ``num_threads``) and
   restored afterwards; it is recorded with the result.
4. Everything runs under ``torch.inference_mode()``.
5. ``warmup`` untimed calls, then :class:`torch.utils.benchmark.Timer` with ``blocked_autorange``
   (default) or ``adaptive_autorange``: blocks of ``number_per_run`` calls, repeated until
   ``min_run_time`` seconds were spent and at least ``min_measurements`` blocks were timed (within
   ``max_run_time``). On CUDA the timer synchronises the device at the start and end of every block,
   so queued kernels are counted.
6. Statistics over the per-call times of the blocks: median, 25th/75th percentiles (IQR), mean, the
   number of blocks; per-sample latency = median / batch size, throughput = batch size / median.

:func:`compare_latency` is the A/B protocol: both models in one process, interleaved ABBA blocks of the
same number of calls, one ratio t_a / t_b per pair of adjacent blocks, so slow drifts of the machine
(other tenants, frequency scaling) cancel in each ratio.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.benchmark import Timer

from darc.bench.env import (
    bench_environment,
    dtype_name,
    resolve_device,
    resolve_threads,
    synchronize,
    torch_threads,
)
from darc.bench.inputs import make_input, shape_str

AUTORANGES = ("blocked", "adaptive")


@dataclass
class LatencyResult:
    """One latency measurement of one model (or sub-module) at one batch size. Times in seconds."""

    median_s: float
    q25_s: float
    q75_s: float
    mean_s: float
    n_measurements: int
    number_per_run: int
    batch_size: int
    input_shape: tuple[int, ...]
    device: str
    threads: int
    dtype: str
    channels_last: bool
    backend: str = "eager"
    autorange: str = "blocked"
    times_s: list[float] = field(default_factory=list, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def iqr_s(self) -> float:
        return self.q75_s - self.q25_s

    @property
    def per_sample_s(self) -> float:
        return self.median_s / self.batch_size

    @property
    def throughput_per_s(self) -> float:
        """Samples per second at the median latency."""
        return self.batch_size / self.median_s

    def to_record(self) -> dict[str, Any]:
        """A flat dict: the statistics plus the environment (see :data:`darc.bench.env.ENV_KEYS`)."""
        record = bench_environment(
            self.device,
            threads=self.threads,
            dtype=self.dtype,
            batch_size=self.batch_size,
            channels_last=self.channels_last,
        )
        record.update(
            backend=self.backend,
            input_shape=shape_str(self.input_shape),
            median_s=self.median_s,
            q25_s=self.q25_s,
            q75_s=self.q75_s,
            iqr_s=self.iqr_s,
            mean_s=self.mean_s,
            n_measurements=self.n_measurements,
            number_per_run=self.number_per_run,
            per_sample_s=self.per_sample_s,
            throughput_per_s=self.throughput_per_s,
            autorange=self.autorange,
        )
        record.update(self.extra)
        return record


@dataclass
class ABResult:
    """An interleaved A/B comparison. ``ratio`` = t_a / t_b per pair: > 1 means B is faster."""

    ratio_median: float
    ratio_q25: float
    ratio_q75: float
    median_a_s: float
    median_b_s: float
    pairs: int
    number_per_block: int
    batch_size: int
    input_shape: tuple[int, ...]
    device: str
    threads: int
    dtype: str
    channels_last: bool
    ratios: list[float] = field(default_factory=list, repr=False)
    times_a_s: list[float] = field(default_factory=list, repr=False)
    times_b_s: list[float] = field(default_factory=list, repr=False)

    @property
    def ratio_iqr(self) -> float:
        return self.ratio_q75 - self.ratio_q25

    @property
    def speedup(self) -> float:
        """How many times faster B is than A (the median per-pair ratio)."""
        return self.ratio_median

    def to_record(self) -> dict[str, Any]:
        record = bench_environment(
            self.device,
            threads=self.threads,
            dtype=self.dtype,
            batch_size=self.batch_size,
            channels_last=self.channels_last,
        )
        d = asdict(self)
        for k in ("ratios", "times_a_s", "times_b_s", "device", "threads", "dtype", "channels_last"):
            d.pop(k)
        d["input_shape"] = shape_str(self.input_shape)
        d["ratio_iqr"] = self.ratio_iqr
        record.update(d)
        return record


# ---------------------------------------------------------------------------------------------------
# helpers


def _stats(times: Sequence[float]) -> tuple[float, float, float, float]:
    """(q25, median, q75, mean) with linear interpolation."""
    arr = np.asarray(times, dtype=float)
    q25, med, q75 = np.percentile(arr, [25, 50, 75])
    return float(q25), float(med), float(q75), float(arr.mean())


def _tensors(model: nn.Module) -> list[torch.Tensor]:
    return list(model.parameters()) + list(model.buffers())


def prepare_model(
    model: nn.Module,
    device: torch.device,
    dtype: torch.dtype,
    channels_last: bool = False,
) -> tuple[nn.Module, Callable[[], None]]:
    """The model ready for timing (eval mode, on ``device``, floating tensors in ``dtype``).

    A deep copy is made only when a conversion is needed, so the caller's model is never moved or cast.
    Returns the module and a function that restores the caller's model's training flag.
    """
    tensors = _tensors(model)
    needs_copy = channels_last or any(
        t.device != device or (t.is_floating_point() and t.dtype != dtype) for t in tensors
    )
    was_training = model.training
    if needs_copy:
        module = copy.deepcopy(model).to(device=device, dtype=dtype)
        if channels_last:
            module = module.to(memory_format=torch.channels_last)
    else:
        module = model
    module.eval()

    def restore() -> None:
        model.train(was_training)

    return module, restore


def _sync_timer(device: torch.device) -> Callable[[], float]:
    """A wall clock that first waits for ``device`` (Timer calls it at both ends of every block)."""

    def timer() -> float:
        synchronize(device)
        return time.perf_counter()

    return timer


def time_callable(
    fn: Callable[[], Any],
    *,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    min_run_time: float = 0.2,
    warmup: int = 3,
    autorange: str = "blocked",
    max_run_time: float = 10.0,
    threshold: float = 0.1,
    min_measurements: int = 10,
) -> tuple[list[float], int]:
    """Time a zero-argument callable with the darc protocol; returns (per-call times, calls per block).

    Shared by the eager, ``torch.compile`` and ONNX Runtime backends so all use the same protocol.
    ``blocked_autorange`` picks blocks long enough to amortise the timer (and the CUDA synchronisation);
    a short ``min_run_time`` can then leave only one or two blocks, so if fewer than
    ``min_measurements`` were collected a second ``blocked_autorange`` call adds the missing blocks
    (within ``max_run_time`` in total).
    """
    if autorange not in AUTORANGES:
        raise ValueError(f"autorange must be one of {AUTORANGES}, got {autorange!r}")
    device = torch.device(device)
    n_threads = resolve_threads(threads)
    timer = Timer(
        stmt="fn()", globals={"fn": fn}, num_threads=n_threads, timer=_sync_timer(device), label="darc"
    )
    with torch_threads(n_threads), torch.inference_mode():
        for _ in range(max(0, warmup)):
            fn()
        synchronize(device)
        if autorange == "blocked":
            m = timer.blocked_autorange(min_run_time=min_run_time)
        else:
            m = timer.adaptive_autorange(
                threshold=threshold, min_run_time=min_run_time, max_run_time=max_run_time
            )
        times, number = list(m.times), int(m.number_per_run)
        spent = sum(m.raw_times)
        for _ in range(3):  # top up to min_measurements blocks
            block = spent / len(times)
            missing = min_measurements - len(times)
            if missing <= 0 or spent + block >= max_run_time:
                break
            more = min(missing - 0.5, (max_run_time - spent) / block - 0.5) * block
            m = timer.blocked_autorange(min_run_time=more)
            times += list(m.times)
            number = int(m.number_per_run)
            spent += sum(m.raw_times)
    return times, number


def result_from_times(
    times: Sequence[float],
    number_per_run: int,
    *,
    input_shape: Sequence[int],
    batch_size: int,
    device: torch.device | str,
    threads: int,
    dtype: torch.dtype | str,
    channels_last: bool,
    backend: str = "eager",
    autorange: str = "blocked",
    extra: dict[str, Any] | None = None,
) -> LatencyResult:
    """A :class:`LatencyResult` from per-call times."""
    q25, med, q75, mean = _stats(times)
    return LatencyResult(
        median_s=med,
        q25_s=q25,
        q75_s=q75,
        mean_s=mean,
        n_measurements=len(times),
        number_per_run=number_per_run,
        batch_size=batch_size,
        input_shape=tuple(int(s) for s in input_shape),
        device=str(device),
        threads=threads,
        dtype=dtype_name(dtype),
        channels_last=channels_last,
        backend=backend,
        autorange=autorange,
        times_s=list(times),
        extra=dict(extra or {}),
    )


# ---------------------------------------------------------------------------------------------------
# public API


def measure_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    batch_size: int = 1,
    *,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    min_run_time: float = 0.2,
    warmup: int = 3,
    autorange: str = "blocked",
    max_run_time: float = 10.0,
    min_measurements: int = 10,
) -> LatencyResult:
    """Wall-clock latency of ``model(x)`` with ``x`` of shape ``(batch_size, *input_shape)``.

    ``input_shape`` excludes the batch dimension, e.g. ``(C, H, W)``. ``threads=None`` uses (and records)
    torch's current thread count. ``autorange`` is ``"blocked"`` (fixed ``min_run_time`` seconds) or
    ``"adaptive"`` (until IQR/median < 0.1 or ``max_run_time``); at least ``min_measurements`` blocks are
    collected where ``max_run_time`` allows. See the module docstring for the protocol.
    """
    dev = resolve_device(device)
    n_threads = resolve_threads(threads)
    module, restore = prepare_model(model, dev, dtype, channels_last)
    try:
        x = make_input(input_shape, batch_size, dev, dtype, channels_last)
        times, number = time_callable(
            lambda: module(x),
            device=dev,
            threads=n_threads,
            min_run_time=min_run_time,
            warmup=warmup,
            autorange=autorange,
            max_run_time=max_run_time,
            min_measurements=min_measurements,
        )
    finally:
        restore()
    return result_from_times(
        times,
        number,
        input_shape=input_shape,
        batch_size=batch_size,
        device=dev,
        threads=n_threads,
        dtype=dtype,
        channels_last=channels_last,
        autorange=autorange,
    )


def measure_module_latency(
    module: nn.Module,
    in_shape: Sequence[int],
    batch_size: int = 1,
    *,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    min_run_time: float = 0.1,
    warmup: int = 3,
    autorange: str = "blocked",
    min_measurements: int = 10,
) -> LatencyResult:
    """Latency of one sub-module (a slot candidate, a stem, a head) on its own input shape.

    Same protocol as :func:`measure_latency`; ``in_shape`` is the module's input shape without the batch
    dimension (``SlotSpec.in_shape``). Used to fill DARC's latency lookup table
    (:func:`darc.bench.cost_check.build_latency_table`).
    """
    return measure_latency(
        module,
        in_shape,
        batch_size,
        device=device,
        threads=threads,
        dtype=dtype,
        channels_last=channels_last,
        min_run_time=min_run_time,
        warmup=warmup,
        autorange=autorange,
        min_measurements=min_measurements,
    )


def compare_latency(
    model_a: nn.Module,
    model_b: nn.Module,
    input_shape: Sequence[int],
    batch_size: int = 1,
    *,
    pairs: int = 20,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    warmup: int = 3,
    min_block_time: float = 0.02,
    input_shape_b: Sequence[int] | None = None,
) -> ABResult:
    """Interleaved A/B latency comparison in one process (ABBA order).

    Both models get the same input tensor, unless ``input_shape_b`` gives B its own (to time a
    sub-module against a whole network, as the latency lookup table does). After ``warmup`` calls
    each, the calls per block (``number``) is chosen so that the slower model's block lasts about
    ``min_block_time`` seconds; then
    ``pairs`` pairs of ``Timer.timeit(number)`` blocks run in the order AB, BA, AB, ... and each pair
    gives one ratio t_a / t_b. Reports the median and IQR of the ratios and each model's median per-call
    time. A ratio above 1 means B is faster.
    """
    if pairs < 1:
        raise ValueError(f"pairs must be >= 1, got {pairs}")
    dev = resolve_device(device)
    n_threads = resolve_threads(threads)
    mod_a, restore_a = prepare_model(model_a, dev, dtype, channels_last)
    mod_b, restore_b = prepare_model(model_b, dev, dtype, channels_last)
    try:
        x = make_input(input_shape, batch_size, dev, dtype, channels_last)
        x_b = x if input_shape_b is None else make_input(input_shape_b, batch_size, dev, dtype, channels_last)
        clock = _sync_timer(dev)
        timers = {
            name: Timer(stmt="m(x)", globals={"m": m, "x": inp}, num_threads=n_threads, timer=clock)
            for name, m, inp in (("a", mod_a, x), ("b", mod_b, x_b))
        }
        times: dict[str, list[float]] = {"a": [], "b": []}
        with torch_threads(n_threads), torch.inference_mode():
            single = []
            for m, inp in ((mod_a, x), (mod_b, x_b)):
                for _ in range(max(1, warmup)):
                    m(inp)
                synchronize(dev)
                t0 = clock()
                m(inp)
                single.append(clock() - t0)
            number = max(1, int(np.ceil(min_block_time / max(max(single), 1e-9))))
            for i in range(pairs):
                order = ("a", "b") if i % 2 == 0 else ("b", "a")
                for name in order:
                    times[name].append(timers[name].timeit(number).median)
    finally:
        restore_a()
        restore_b()
    ratios = [ta / tb for ta, tb in zip(times["a"], times["b"])]
    r25, rmed, r75, _ = _stats(ratios)
    return ABResult(
        ratio_median=rmed,
        ratio_q25=r25,
        ratio_q75=r75,
        median_a_s=_stats(times["a"])[1],
        median_b_s=_stats(times["b"])[1],
        pairs=pairs,
        number_per_block=number,
        batch_size=batch_size,
        input_shape=tuple(int(s) for s in input_shape),
        device=str(dev),
        threads=n_threads,
        dtype=dtype_name(dtype),
        channels_last=channels_last,
        ratios=ratios,
        times_a_s=times["a"],
        times_b_s=times["b"],
    )

"""Execution backends, each timed with the same protocol and reported separately from eager PyTorch.

A backend is a function ``(model, input_shape, batch_size, *, device, threads, dtype, channels_last,
min_run_time, warmup, autorange, min_measurements, **options) -> record`` registered in :data:`BACKENDS`:

* ``eager`` - plain PyTorch (:func:`darc.bench.latency.measure_latency`).
* ``compile`` - ``torch.compile(model, backend=compile_backend, mode=mode, dynamic=False)``; the first
  call (compilation) is timed separately as ``compile_s``. Compiling with inductor takes a while.
* ``onnxruntime`` - ``torch.onnx.export`` to a temporary file (the TorchScript exporter by default,
  ``exporter="dynamo"`` for the dynamo one; the other is tried if the first fails), then an
  ``onnxruntime.InferenceSession`` on ``CPUExecutionProvider`` with ``intra_op_num_threads=threads``
  and ``inter_op_num_threads=1``. The record carries the exporter used and the largest absolute
  difference from eager outputs.

:func:`run_backend` never raises for an unavailable backend: it returns a ``status="skipped"`` record
whose ``reason`` says why (missing package, unsupported device or dtype, export or compile failure).
"""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from darc.bench.env import bench_environment, resolve_device, resolve_threads, synchronize, torch_threads
from darc.bench.latency import (
    make_input,
    measure_latency,
    prepare_model,
    result_from_times,
    shape_str,
    time_callable,
)
from darc.registry import Registry

BackendFn = Callable[..., dict[str, Any]]
BACKENDS: Registry[dict[str, Any]] = Registry("benchmark backend")


class BackendUnavailable(RuntimeError):
    """A backend cannot run here; the message is the reason recorded in the skipped record."""


def skipped_record(
    backend: str,
    reason: str,
    input_shape: Sequence[int],
    batch_size: int,
    *,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
) -> dict[str, Any]:
    """The record of a backend that did not run: the environment plus ``status``/``reason``."""
    record = bench_environment(
        device, threads=threads, dtype=dtype, batch_size=batch_size, channels_last=channels_last
    )
    record.update(backend=backend, input_shape=shape_str(input_shape), status="skipped", reason=reason)
    return record


@BACKENDS.register("eager")
def eager_latency(
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
    min_measurements: int = 10,
) -> dict[str, Any]:
    """Eager PyTorch latency record."""
    res = measure_latency(
        model,
        input_shape,
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
    return {**res.to_record(), "status": "ok", "reason": None}


@BACKENDS.register("compile")
def compile_latency(
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
    min_measurements: int = 10,
    compile_backend: str = "inductor",
    mode: str | None = None,
) -> dict[str, Any]:
    """``torch.compile`` latency record (``compile_s`` = time of the first, compiling call)."""
    dev = resolve_device(device)
    n_threads = resolve_threads(threads)
    if compile_backend == "inductor" and dev.type == "cpu" and not any(
        shutil.which(c) for c in ("cc", "gcc", "g++", "clang", "clang++")
    ):
        raise BackendUnavailable("torch.compile (inductor, cpu) needs a C++ compiler; none found on PATH")
    module, restore = prepare_model(model, dev, dtype, channels_last)
    try:
        compiled = torch.compile(module, backend=compile_backend, mode=mode, dynamic=False)
        x = make_input(input_shape, batch_size, dev, dtype, channels_last)
        with torch_threads(n_threads), torch.inference_mode():
            t0 = time.perf_counter()
            compiled(x)
            synchronize(dev)
            compile_s = time.perf_counter() - t0
        times, number = time_callable(
            lambda: compiled(x),
            device=dev,
            threads=n_threads,
            min_run_time=min_run_time,
            warmup=warmup,
            autorange=autorange,
            min_measurements=min_measurements,
        )
    finally:
        restore()
    res = result_from_times(
        times,
        number,
        input_shape=input_shape,
        batch_size=batch_size,
        device=dev,
        threads=n_threads,
        dtype=dtype,
        channels_last=channels_last,
        backend="compile",
        autorange=autorange,
        extra={"compile_backend": compile_backend, "compile_mode": mode, "compile_s": compile_s},
    )
    return {**res.to_record(), "status": "ok", "reason": None}


def export_onnx(
    model: nn.Module, x: torch.Tensor, path: str | os.PathLike, exporter: str = "torchscript"
) -> str:
    """Export ``model`` (eval, cpu) for input ``x`` to ``path``; returns the exporter that worked.

    ``exporter`` ("torchscript" or "dynamo") is tried first, then the other one.
    """
    if exporter not in ("torchscript", "dynamo"):
        raise ValueError(f"exporter must be 'torchscript' or 'dynamo', got {exporter!r}")
    order = [exporter] + [e for e in ("torchscript", "dynamo") if e != exporter]
    errors = []
    for name in order:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    model,
                    (x,),
                    str(path),
                    input_names=["input"],
                    output_names=["output"],
                    dynamo=(name == "dynamo"),
                    **({"verbose": False} if name == "dynamo" else {}),
                )
            return name
        except Exception as exc:  # noqa: BLE001 - collected into the reason
            errors.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    raise BackendUnavailable("ONNX export failed (" + "; ".join(errors) + ")")


@BACKENDS.register("onnxruntime")
def onnxruntime_latency(
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
    min_measurements: int = 10,
    exporter: str = "torchscript",
) -> dict[str, Any]:
    """ONNX Runtime (CPUExecutionProvider) latency record; float32 on cpu only."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendUnavailable(f"onnxruntime is not installed ({exc})") from exc
    dev = torch.device(device)
    if dev.type != "cpu":
        raise BackendUnavailable(f"onnxruntime backend measures CPUExecutionProvider only, not {dev}")
    if dtype != torch.float32:
        raise BackendUnavailable(f"onnxruntime backend supports float32 only, not {dtype}")
    n_threads = resolve_threads(threads)
    module, restore = prepare_model(model, dev, dtype, False)
    try:
        x = make_input(input_shape, batch_size, dev, dtype)
        with tempfile.TemporaryDirectory(prefix="darc-onnx-") as tmp:
            path = os.path.join(tmp, "model.onnx")
            used = export_onnx(module, x, path, exporter)
            onnx_bytes = os.path.getsize(path)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = n_threads
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        in_name = sess.get_inputs()[0].name
        feed = {in_name: x.numpy()}
        with torch.inference_mode():
            ref = module(x)
        out = sess.run(None, feed)[0]
        ref_t = ref[0] if isinstance(ref, (tuple, list)) else ref
        max_abs_diff = float((torch.from_numpy(out) - ref_t.float()).abs().max())
        times, number = time_callable(
            lambda: sess.run(None, feed),
            device=dev,
            threads=n_threads,
            min_run_time=min_run_time,
            warmup=warmup,
            autorange=autorange,
            min_measurements=min_measurements,
        )
    finally:
        restore()
    res = result_from_times(
        times,
        number,
        input_shape=input_shape,
        batch_size=batch_size,
        device=dev,
        threads=n_threads,
        dtype=dtype,
        channels_last=False,
        backend="onnxruntime",
        autorange=autorange,
        extra={
            "onnx_exporter": used,
            "onnxruntime": ort.__version__,
            "onnx_bytes": onnx_bytes,
            "max_abs_diff_vs_eager": max_abs_diff,
        },
    )
    return {**res.to_record(), "status": "ok", "reason": None}


def run_backend(
    name: str,
    model: nn.Module,
    input_shape: Sequence[int],
    batch_size: int = 1,
    *,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Run backend ``name``; a ``status="skipped"`` record with the reason if it cannot run here.

    Unknown backend names raise ``KeyError`` (a typo is not a skip). ``options`` go to the backend
    (``min_run_time``, ``warmup``, ``autorange``, and backend-specific ones such as ``exporter`` or
    ``compile_backend``).
    """
    fn = BACKENDS.get(name)
    common = dict(device=device, threads=threads, dtype=dtype, channels_last=channels_last)
    inspect.signature(fn).bind(model, input_shape, batch_size, **common, **options)  # bad options raise
    try:
        return fn(model, input_shape, batch_size, **common, **options)
    except BackendUnavailable as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - a failing optional backend is reported, not fatal
        if name == "eager":
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        reason = f"{name} failed: {type(exc).__name__}: {first}"
    return skipped_record(name, reason, input_shape, batch_size, **common)

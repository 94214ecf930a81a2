"""Memory footprints: parameter bytes, serialised size, and measured peak inference memory.

"Memory footprint" in the paper's abstract is ambiguous, so darc reports three numbers:

* :func:`param_bytes` - the exact sum of ``numel * element_size`` over parameters and buffers
  (each counted once even if shared); :func:`tensor_bytes` gives the two parts separately.
* :func:`state_dict_bytes` - the size of ``torch.save(model.state_dict())`` (what a checkpoint costs).
* :func:`peak_inference_memory` - measured peak memory while running one inference (resident memory on CPU).
* :func:`peak_tensor_memory` - the peak of PyTorch's own tensor allocations during one inference, counted
  exactly (weights + buffers + live activations and workspaces): deterministic, the CPU twin of CUDA's
  ``max_memory_allocated``.

Peak inference memory, method
-----------------------------
CUDA: in-process. A copy of the model is moved to the device after the input was made,
``torch.cuda.reset_peak_memory_stats`` is called, one forward runs under ``inference_mode``, and the
result is ``max_memory_allocated - memory_allocated_before_the_model``: weights + activations +
workspaces as seen by the caching allocator (not the CUDA context, not allocator fragmentation).

CPU: one process cannot measure its own peak reliably (the Python heap, the allocator and already
imported libraries blur it), so two fresh child processes are started with the multiprocessing
``spawn`` context (never ``fork``: a forked child would inherit the parent's memory). Both import the
same modules (the model spec is unpickled in both), set the same threads and make the same input.

* the *model* child builds the model from its :class:`ModelSpec` (builder + optional state dict,
  loaded with ``weights_only=True`` and ``assign=True`` so the weights are held once), puts it in eval
  mode, then resets its peak-RSS counter (Linux: ``echo 5 > /proc/self/clear_refs``), runs one
  inference under ``inference_mode`` and reads its peak resident set size (``VmHWM`` in
  ``/proc/self/status``);
* the *baseline* child does exactly the same but neither builds nor runs the model.

``net_bytes = peak(model child) - peak(baseline child)``: the resident weights plus the activations,
workspaces and library pages the inference touches. The transient cost of building/loading the model
is excluded by the reset. Where the counter cannot be reset (non-Linux), the peak is
``getrusage(RUSAGE_SELF).ru_maxrss`` over the child's whole life (then including loading transients);
the method used is recorded in ``MemoryResult.method``. RSS is page-granular and allocators keep freed
memory, so expect noise of a few MiB: compare models whose difference is well above that.

Peak tensor memory, method
--------------------------
CPU: in-process, with one warm-up inference first (backends cache primitives on first use), then one
inference under ``torch.profiler`` with ``profile_memory=True``: every allocation and release of PyTorch's
CPU allocator (op outputs and the temporary tensors ops make) is an event; memory a library allocates on its
own is not; the running sum of their sizes, in time order, has a maximum, the peak the
inference adds. ``net_bytes = parameter + buffer bytes + that peak``: what the network holds while it runs,
without the process's libraries, the Python heap or the allocator's pages. Threads are fixed and the order
of allocations does not depend on timing, so the count repeats to the byte (tested), where RSS moves by MBs;
the RSS probe above stays the system's view. CUDA: the same quantity as :func:`peak_inference_memory`.

A plain ``nn.Module`` is passed to the children without pickling its weights: its skeleton is copied
with every saved tensor on the ``meta`` device (no storage) and the weights go to a temporary state-dict
file (:meth:`ModelSpec.from_module`). Its class must therefore be importable by the child (defined in
a module, not in ``__main__`` of an interactive session). Registry models use
:meth:`ModelSpec.registry`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
import io
import multiprocessing as mp
import os
import pickle
import resource
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from darc.bench.env import bench_environment, dtype_name, resolve_device, resolve_threads, synchronize
from darc.bench.inputs import make_input, shape_str

# ---------------------------------------------------------------------------------------------------
# static sizes


def tensor_bytes(model: nn.Module) -> dict[str, int]:
    """``{"parameter_bytes", "buffer_bytes", "total_bytes", "num_parameters"}``; shared tensors once."""
    p = sum(t.numel() * t.element_size() for t in model.parameters())
    b = sum(t.numel() * t.element_size() for t in model.buffers())
    n = sum(t.numel() for t in model.parameters())
    return {"parameter_bytes": p, "buffer_bytes": b, "total_bytes": p + b, "num_parameters": n}


def param_bytes(model: nn.Module) -> int:
    """Exact bytes of parameters + buffers: sum of ``numel * element_size`` (see :func:`tensor_bytes`)."""
    return tensor_bytes(model)["total_bytes"]


def state_dict_bytes(model: nn.Module) -> int:
    """Size in bytes of ``torch.save(model.state_dict())`` (serialised into memory, not to disk)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


# ---------------------------------------------------------------------------------------------------
# model specs for child processes


def _identity_builder(skeleton: nn.Module) -> nn.Module:
    """Builder for :meth:`ModelSpec.from_module`: the (meta-device) skeleton itself."""
    return skeleton


@dataclass(frozen=True)
class ModelSpec:
    """How a child process gets a model: a picklable zero-argument ``builder`` plus optional weights.

    ``builder`` must be importable by reference (a module-level function or a ``functools.partial`` of
    one, e.g. ``functools.partial(darc.models.create_model, "wrn16_8", in_chans=1)``).
    ``state_dict_path`` is loaded with ``torch.load(weights_only=True)`` and ``load_state_dict(...,
    assign=True)``.
    """

    builder: Callable[[], nn.Module]
    state_dict_path: str | None = None

    def build(self) -> nn.Module:
        model = self.builder()
        if self.state_dict_path is not None:
            state = torch.load(self.state_dict_path, map_location="cpu", weights_only=True)
            model.load_state_dict(state, assign=True)
            del state
        meta = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
        if meta:
            raise RuntimeError(f"tensors {meta[:5]} have no data after loading the state dict")
        return model

    @classmethod
    def registry(cls, name: str, state_dict_path: str | None = None, **kwargs: Any) -> ModelSpec:
        """A model from the model registry: ``create_model(name, **kwargs)`` (+ optional weights)."""
        from darc.models import create_model

        return cls(functools.partial(create_model, name, **kwargs), state_dict_path)

    @classmethod
    def from_module(cls, module: nn.Module, directory: str | os.PathLike) -> ModelSpec:
        """A spec for an existing module: weights saved to ``directory/model.pt``, skeleton on ``meta``.

        The skeleton is a deep copy in which every tensor of the state dict is replaced by a meta
        tensor (no data is copied); tensors not in the state dict (non-persistent buffers) are kept.
        """
        path = Path(directory) / "model.pt"
        state = module.state_dict()
        torch.save(state, path)
        saved = set(state)
        memo: dict[int, Any] = {}
        for name, p in module.named_parameters(remove_duplicate=False):
            if name in saved and id(p) not in memo:
                memo[id(p)] = nn.Parameter(p.detach().to("meta"), requires_grad=p.requires_grad)
        for name, b in module.named_buffers(remove_duplicate=False):
            if name in saved and id(b) not in memo:
                memo[id(b)] = b.detach().to("meta")
        skeleton = copy.deepcopy(module, memo)
        return cls(functools.partial(_identity_builder, skeleton), str(path))


def _as_spec(
    model_or_spec: nn.Module | ModelSpec | Callable[[], nn.Module] | tuple, directory: str
) -> ModelSpec:
    if isinstance(model_or_spec, ModelSpec):
        return model_or_spec
    if isinstance(model_or_spec, nn.Module):
        return ModelSpec.from_module(model_or_spec, directory)
    if isinstance(model_or_spec, tuple) and len(model_or_spec) == 2 and isinstance(model_or_spec[0], str):
        name, kwargs = model_or_spec
        return ModelSpec.registry(name, **dict(kwargs))
    if callable(model_or_spec):
        return ModelSpec(model_or_spec)
    raise TypeError(
        "model_or_spec must be an nn.Module, a ModelSpec, a zero-argument builder or a "
        f"(registry name, kwargs) tuple, got {type(model_or_spec).__name__}"
    )


# ---------------------------------------------------------------------------------------------------
# peak memory


@dataclass
class MemoryResult:
    """Peak inference memory in bytes. ``net_bytes`` is what the model's inference adds (see module doc)."""

    net_bytes: int
    peak_bytes: int
    baseline_bytes: int
    method: str
    device: str
    batch_size: int
    input_shape: tuple[int, ...]
    threads: int
    dtype: str
    channels_last: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        record = bench_environment(
            self.device,
            threads=self.threads,
            dtype=self.dtype,
            batch_size=self.batch_size,
            channels_last=self.channels_last,
        )
        record.update(
            input_shape=shape_str(self.input_shape),
            net_bytes=self.net_bytes,
            peak_bytes=self.peak_bytes,
            baseline_bytes=self.baseline_bytes,
            method=self.method,
        )
        record.update(self.extra)
        return record


def _status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


def _peak_rss_bytes(reset: bool) -> tuple[int, str]:
    hwm = _status_kib("VmHWM")
    if reset and hwm is not None:
        return hwm * 1024, "VmHWM reset before inference (spawned child minus baseline child)"
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return ru * scale, "ru_maxrss over child lifetime (spawned child minus baseline child)"


def _probe_child(conn: Any, specs_path: str, index: int | None, input_shape: tuple[int, ...],
                 batch_size: int, threads: int, dtype: torch.dtype, channels_last: bool) -> None:
    """Child process body (module level so ``spawn`` can import it). Sends a dict through ``conn``.

    Every child unpickles all specs from ``specs_path`` (so all import the same modules); ``index`` picks the
    model to run, ``None`` makes this the baseline child.
    """
    try:
        with open(specs_path, "rb") as fh:
            specs: list[ModelSpec] = pickle.load(fh)
        torch.set_num_threads(threads)
        x = make_input(input_shape, batch_size, torch.device("cpu"), dtype, channels_last)
        model = None
        if index is not None:
            model = specs[index].build().to(dtype=dtype).eval()
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
        del specs
        gc.collect()
        rss_before = (_status_kib("VmRSS") or 0) * 1024
        reset = _reset_peak_rss()
        with torch.inference_mode():
            y = model(x) if model is not None else x
            del y
        peak, method = _peak_rss_bytes(reset)
        conn.send({"ok": True, "peak": peak, "rss_before": rss_before, "method": method})
    except BaseException:  # noqa: BLE001 - reported to the parent
        conn.send({"ok": False, "error": traceback.format_exc()})
    finally:
        conn.close()


@contextlib.contextmanager
def _main_not_reimported(active: bool) -> Iterator[None]:
    """While active, ``spawn`` children do not re-import the calling script (``__main__``): they start in about
    half the time (torch and the models' modules only, not a workflow script's imports). ``spawn`` imports the
    main module by its ``__spec__`` name or its ``__file__``; both are hidden for the ``start()`` and restored."""
    main = sys.modules.get("__main__")
    if not active or main is None:
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def _run_children(specs: list[ModelSpec], input_shape: tuple[int, ...], batch_size: int, threads: int,
                  dtype: torch.dtype, channels_last: bool, timeout: float,
                  max_parallel: int) -> tuple[list[dict], dict]:
    """Run one child per spec plus one baseline child, at most ``max_parallel`` at a time.

    Returns (model reports in ``specs`` order, baseline report).
    """
    ctx = mp.get_context("spawn")
    # the specs travel as a file, not as the children's arguments: a start() whose arguments exceed the pipe's
    # buffer blocks until that child has booted, which ran the children one after the other
    payload = pickle.dumps(specs, protocol=pickle.HIGHEST_PROTOCOL)
    fd, specs_path = tempfile.mkstemp(prefix="darc-mem-specs-", suffix=".pkl")
    with os.fdopen(fd, "wb") as fh:
        fh.write(payload)
    # a child needs the main module only when a spec refers to it (a class defined in the calling script)
    skip_main = b"__main__" not in payload
    tasks: list[int | None] = [None, *range(len(specs))]
    reports: dict[int | None, dict] = {}
    running: list[tuple[int | None, Any, Any]] = []

    def start(index: int | None) -> None:
        parent_conn, child_conn = ctx.Pipe(duplex=False)
        p = ctx.Process(
            target=_probe_child,
            args=(child_conn, specs_path, index, input_shape, batch_size, threads, dtype, channels_last),
            daemon=True,
        )
        with _main_not_reimported(skip_main):
            p.start()
        child_conn.close()
        running.append((index, p, parent_conn))

    def finish(index: int | None, p: Any, conn: Any) -> None:
        try:
            if not conn.poll(timeout):
                raise TimeoutError(f"memory probe child did not answer within {timeout} s")
            reports[index] = conn.recv()
        except EOFError as exc:
            raise RuntimeError(
                "memory probe child died without a report: out of memory, or the calling script is not guarded by "
                "`if __name__ == \"__main__\":` (spawned children re-import the main module)"
            ) from exc
        finally:
            conn.close()
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()

    try:
        while tasks or running:
            while tasks and len(running) < max(1, max_parallel):
                start(tasks.pop(0))
            finish(*running.pop(0))
    finally:
        for _, p, conn in running:  # only after an error: stop the rest
            p.kill()
            p.join()
            conn.close()
        os.unlink(specs_path)
    for index, rep in reports.items():
        if not rep["ok"]:
            who = "baseline child" if index is None else f"child for model {index}"
            raise RuntimeError(f"memory probe ({who}) failed:\n{rep['error']}")
    return [reports[i] for i in range(len(specs))], reports[None]


def _peak_cuda(model: nn.Module, input_shape: tuple[int, ...], batch_size: int, device: torch.device,
               dtype: torch.dtype, channels_last: bool) -> tuple[int, int, int]:
    """(net, peak, baseline) bytes of one forward on CUDA, from the caching allocator's statistics."""
    x = make_input(input_shape, batch_size, device, dtype, channels_last)
    gc.collect()
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated(device)
    m = copy.deepcopy(model).to(device=device, dtype=dtype).eval()
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode():
        y = m(x)
        synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    del y, m, x
    torch.cuda.empty_cache()
    return peak - before, peak, before


ModelLike = nn.Module | ModelSpec | Callable[[], nn.Module] | tuple[str, dict]


def _probe_setup(device: str | torch.device, input_shape: Sequence[int], batch_size: int, threads: int | None,
                 dtype: torch.dtype, channels_last: bool) -> tuple[torch.device, tuple[int, ...], int, dict[str, Any]]:
    """(device, shape, threads, the :class:`MemoryResult` fields every probe of these settings shares)."""
    dev = resolve_device(device)
    shape = tuple(int(s) for s in input_shape)
    n_threads = resolve_threads(threads)
    return dev, shape, n_threads, dict(device=str(dev), batch_size=batch_size, input_shape=shape, threads=n_threads,
                                       dtype=dtype_name(dtype), channels_last=channels_last)


def peak_inference_memory_many(
    models: Mapping[str, ModelLike],
    input_shape: Sequence[int],
    batch_size: int = 1,
    device: str | torch.device = "cpu",
    *,
    threads: int | None = 1,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    timeout: float = 600.0,
    max_parallel: int | None = None,
) -> dict[str, MemoryResult]:
    """:func:`peak_inference_memory` for several models sharing one baseline child (CPU).

    On CPU one child per model plus one baseline child run, at most ``max_parallel`` at a time
    (default: the number of CPUs; lower it when the models are large). Every child unpickles every
    spec, so all import the same modules and the shared baseline is fair.
    """
    dev, shape, n_threads, common = _probe_setup(device, input_shape, batch_size, threads, dtype, channels_last)
    results: dict[str, MemoryResult] = {}
    if dev.type == "cuda":  # the caching allocator counts in-process: the same quantity as peak_tensor_memory
        for name, m in models.items():
            if isinstance(m, nn.Module):
                model = m
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    model = _as_spec(m, tmp).build()
            results[name] = peak_tensor_memory(model, shape, batch_size, dev, threads=threads, dtype=dtype,
                                               channels_last=channels_last)
        return results
    if dev.type != "cpu":
        raise ValueError(f"peak_inference_memory supports cpu and cuda, got {dev}")
    with tempfile.TemporaryDirectory(prefix="darc-mem-") as tmp:
        specs = []
        for i, m in enumerate(models.values()):
            sub = Path(tmp) / str(i)
            sub.mkdir()
            specs.append(_as_spec(m, str(sub)))
        reps, base_rep = _run_children(specs, shape, batch_size, n_threads, dtype, channels_last, timeout,
                                       max_parallel or os.cpu_count() or 1)
    base = int(base_rep["peak"])
    for name, rep in zip(models, reps):
        results[name] = MemoryResult(
            net_bytes=int(rep["peak"]) - base,
            peak_bytes=int(rep["peak"]),
            baseline_bytes=base,
            method=rep["method"],
            extra={"model_rss_before_inference_bytes": rep["rss_before"]},
            **common,
        )
    return results


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (the profiler's native start/stop lines) for the block; Python errors raised
    in it still propagate as exceptions."""
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 to redirect
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            sys.stderr.flush()
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _allocation_peak_cpu(model: nn.Module, x: torch.Tensor) -> int:
    """Peak of the running sum of CPU allocator events (bytes) during one inference of ``model`` on ``x``."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        model(x)  # warm-up: primitive caches are built outside the count
        gc.collect()
        with _quiet_native_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            y = model(x)
            del y
    events = sorted((e.start_ns(), i, e.nbytes()) for i, e in enumerate(prof.profiler.kineto_results.events())
                    if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU)
    running = peak = 0
    for _, _, nbytes in events:
        running += nbytes
        peak = max(peak, running)
    return peak


def peak_tensor_memory(
    model: nn.Module,
    input_shape: Sequence[int],
    batch_size: int = 1,
    device: str | torch.device = "cpu",
    *,
    threads: int | None = 1,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
) -> MemoryResult:
    """Exact peak of the tensor memory one inference holds (method: see the module docstring).

    ``net_bytes`` = parameter + buffer bytes + the peak of the allocations the inference makes; ``peak_bytes``
    the same; ``baseline_bytes`` the parameter + buffer bytes. In-process; ``model`` is not modified (a copy
    is converted when ``dtype`` or ``channels_last`` ask for it).
    """
    dev, shape, n_threads, common = _probe_setup(device, input_shape, batch_size, threads, dtype, channels_last)
    if dev.type == "cuda":
        net, peak, base = _peak_cuda(model, shape, batch_size, dev, dtype, channels_last)
        return MemoryResult(net_bytes=int(net), peak_bytes=int(peak), baseline_bytes=int(base),
                            method="torch.cuda.max_memory_allocated after reset_peak_memory_stats, minus allocated "
                                   "before", **common)
    if dev.type != "cpu":
        raise ValueError(f"peak_tensor_memory supports cpu and cuda, got {dev}")
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        m = model
        if dtype != torch.float32 or channels_last or any(t.device.type != "cpu" for t in model.parameters()):
            m = copy.deepcopy(model).to(device=dev, dtype=dtype)
            if channels_last:
                m = m.to(memory_format=torch.channels_last)
        was_training = m.training
        m.eval()
        try:
            x = make_input(shape, batch_size, dev, dtype, channels_last)
            held = tensor_bytes(m)["total_bytes"]
            added = _allocation_peak_cpu(m, x)
        finally:
            m.train(was_training)
    finally:
        torch.set_num_threads(previous)
    return MemoryResult(net_bytes=held + added, peak_bytes=held + added, baseline_bytes=held,
                        method="tensor allocator peak (torch.profiler memory events) + parameter and buffer bytes",
                        extra={"activation_peak_bytes": added}, **common)


def peak_inference_memory(
    model_or_spec: ModelLike,
    input_shape: Sequence[int],
    batch_size: int = 1,
    device: str | torch.device = "cpu",
    *,
    threads: int | None = 1,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    timeout: float = 600.0,
) -> MemoryResult:
    """Measured peak memory of one inference at ``batch_size`` (method: see the module docstring).

    ``model_or_spec``: an ``nn.Module``; a :class:`ModelSpec`; a picklable zero-argument builder; or a
    ``(registry name, kwargs)`` tuple for :func:`darc.models.create_model`. ``threads`` (default 1)
    is the child's torch thread count on CPU. The model child and the baseline child run concurrently.
    """
    return peak_inference_memory_many(
        {"model": model_or_spec}, input_shape, batch_size, device, threads=threads, dtype=dtype,
        channels_last=channels_last, timeout=timeout, max_parallel=2,
    )["model"]

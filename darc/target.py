"""A compression target and the search for the penalty weight lambda that meets it, measured.

:class:`Target` names what the user asks for: a measured latency ratio at a batch size, a parameter-byte or a
MAC ratio (base / compressed), or a lambda given outright. :func:`search_lambda` bisects in log lambda over
short searches (``search_at(lam)`` returns the plain network of one search), and measures each *distinct*
architecture once (by its signature, :func:`darc.bench.signature.architecture_signature`): latency in
interleaved A/B pairs at the stated thread count, reported with its inter-quartile spread. A try that returns
an architecture already measured reuses that measurement (a second noisy reading of the same network cannot
become the "best"), and the bisection stops when ``patience`` tries in a row found nothing new: the path has
stopped changing in the bracket. Used by :func:`darc.compress` and ``darc budget``.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from darc.materialize import UnsafeRemovalError

#: Target metrics: ``latency`` (measured, interleaved A/B, at ``batch_size``), ``param_bytes``, ``macs``
#: (analytic; never called a speed-up) and ``lam`` (no search: one lambda, as given).
METRICS = ("latency", "param_bytes", "macs", "lam")
_ALIASES = {"bytes": "param_bytes", "params": "param_bytes", "latency_b1": "latency", "speedup": "latency"}
_SYNTAX = re.compile(r"^(?P<metric>[a-z_0-9]+?)(?:@(?P<batch>\d+))?:(?P<value>[0-9.eE+-]+)x?$")


@dataclass(frozen=True)
class Target:
    """What to compress to: ``metric`` (:data:`METRICS`) reaching ``value`` (a ratio base / compressed, or
    lambda for ``lam``); ``batch_size`` for latency."""

    metric: str
    value: float
    batch_size: int = 1

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"target metric must be one of {METRICS}, got {self.metric!r}")
        if not (math.isfinite(self.value) and (self.value >= 0 if self.metric == "lam" else self.value > 1.0)):
            what = "lambda >= 0" if self.metric == "lam" else "a ratio > 1 (base / compressed)"
            raise ValueError(f"target {self.metric} needs {what}, got {self.value}")
        if self.batch_size < 1:
            raise ValueError(f"target batch size must be >= 1, got {self.batch_size}")

    @classmethod
    def parse(cls, text: str | Target) -> Target:
        """``latency:1.5`` (batch 1), ``latency@64:1.3``, ``bytes:3``, ``macs:2``, ``lam:2`` (a ``Target``
        passes through)."""
        if isinstance(text, Target):
            return text
        m = _SYNTAX.match(str(text).strip().lower())
        if not m:
            raise ValueError(f"cannot read target {text!r}: write metric:value, e.g. latency:1.5, latency@64:1.3, "
                             "bytes:3, macs:2 or lam:2")
        metric = _ALIASES.get(m["metric"], m["metric"])
        batch = int(m["batch"]) if m["batch"] else 1
        if m["batch"] and metric != "latency":
            raise ValueError(f"target {text!r}: only latency takes a batch size (@N)")
        return cls(metric, float(m["value"]), batch)

    def __str__(self) -> str:
        at = f"@{self.batch_size}" if self.metric == "latency" and self.batch_size != 1 else ""
        return f"{self.metric}{at}:{self.value:g}"


@dataclass
class Measurement:
    """A measured ratio base / compressed with its spread (inter-quartile range of the A/B pairs; zero for
    counts) and the raw figures."""

    ratio: float
    q25: float
    q75: float
    detail: dict[str, Any] = field(default_factory=dict)


#: A latency ratio whose inter-quartile range exceeds this share of its median is measured again (with twice the
#: pairs, at most ``retries`` times) and, if it stays that wide, reported as noisy with a warning.
MAX_SPREAD = 0.2


def relative_spread(q25: float, q75: float, median: float) -> float:
    """The inter-quartile range as a share of the median."""
    return (q75 - q25) / median if median > 0 else math.inf


def measure(metric: str, base: nn.Module, compressed: nn.Module, input_shape: tuple[int, ...], *,
            batch_size: int = 1, threads: int = 1, pairs: int = 10, min_block_time: float = 0.05,
            device: str = "cpu", max_spread: float = MAX_SPREAD, retries: int = 2) -> Measurement:
    """``metric`` (:data:`METRICS` but ``lam``), base / compressed, measured the way :mod:`darc.bench` does; a
    latency ratio with a spread over ``max_spread`` is measured again (see :data:`MAX_SPREAD`)."""
    from darc.bench.latency import compare_latency
    from darc.bench.macs import count_macs
    from darc.bench.memory import param_bytes

    if metric == "param_bytes":
        a, b = param_bytes(base), param_bytes(compressed)
        return Measurement(a / b, a / b, a / b, {"base_param_bytes": a, "param_bytes": b})
    if metric == "macs":
        a, b = count_macs(base, input_shape, 1), count_macs(compressed, input_shape, 1)
        return Measurement(a / b, a / b, a / b, {"base_macs": a, "macs": b})
    if metric == "latency":
        attempts = []
        for _ in range(1 + max(0, retries)):  # a busy machine widens the spread: measure again, with more pairs
            ab = compare_latency(base.eval(), compressed.eval(), input_shape, batch_size, pairs=pairs,
                                 threads=threads, min_block_time=min_block_time, device=device)
            attempts.append(ab)
            if relative_spread(ab.ratio_q25, ab.ratio_q75, ab.ratio_median) <= max_spread:
                break
            pairs *= 2
        ab = min(attempts, key=lambda a: relative_spread(a.ratio_q25, a.ratio_q75, a.ratio_median))
        spread = relative_spread(ab.ratio_q25, ab.ratio_q75, ab.ratio_median)
        if spread > max_spread:
            warnings.warn(f"latency ratio {ab.ratio_median:.2f}x measured with a spread of {spread:.0%} of its median "
                          f"(q25 {ab.ratio_q25:.2f}, q75 {ab.ratio_q75:.2f}) after {len(attempts)} tries: the machine "
                          "is busy; rerun with nothing else running before trusting it", stacklevel=2)
        return Measurement(ab.ratio_median, ab.ratio_q25, ab.ratio_q75,
                           {"base_ms": ab.median_a_s * 1e3, "ms": ab.median_b_s * 1e3, "pairs": ab.pairs,
                            "threads": ab.threads, "batch_size": batch_size, "attempts": len(attempts),
                            "noisy": spread > max_spread})
    raise ValueError(f"cannot measure {metric!r}: choose one of {METRICS[:-1]}")


@dataclass
class LambdaTry:
    """One search of the bisection: its lambda, the architecture it gave and that architecture's measurement."""

    lam: float
    signature: str
    ratio: float
    q25: float
    q75: float
    meets_target: bool
    reused: bool
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class LambdaPath:
    """Every try, the best (the smallest lambda that meets the target, or None) and why the search stopped."""

    target: Target
    tries: list[LambdaTry]
    best: int | None
    stopped: str
    models: dict[str, nn.Module] = field(default_factory=dict, repr=False)

    @property
    def best_try(self) -> LambdaTry | None:
        return None if self.best is None else self.tries[self.best]

    def best_model(self) -> nn.Module | None:
        return None if self.best is None else self.models[self.tries[self.best].signature]

    def to_dict(self) -> dict[str, Any]:
        return {"target": str(self.target), "tries": [asdict(t) for t in self.tries], "best": self.best,
                "stopped": self.stopped}


def check_lambda_range(lam_low: Any, lam_high: Any) -> None:
    """Refuse a bisection range that is not ``0 < lam_low < lam_high`` (finite numbers), before any search."""
    for key, value in (("lam_low", lam_low), ("lam_high", lam_high)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"budget.{key} must be a finite number > 0 (the bisection runs in log lambda), "
                             f"got {value!r}: fix it in the config or with --set budget.{key}=...")
    if lam_low >= lam_high:
        raise ValueError(f"budget.lam_low ({lam_low}) must be below budget.lam_high ({lam_high}): the bisection "
                         "searches between them; swap them or widen the range")


def search_lambda(
    search_at: Callable[[float], tuple[nn.Module, dict[str, Any]]], base: nn.Module, target: Target,
    input_shape: tuple[int, ...], *, lam_low: float = 0.01, lam_high: float = 100.0, max_tries: int = 8,
    tolerance: float = 0.05, patience: int = 2, threads: int = 1, pairs: int = 10, min_block_time: float = 0.05,
    device: str = "cpu", log: Callable[[str], None] | None = print,
    on_try: Callable[[LambdaPath], None] | None = None,
) -> LambdaPath:
    """Bisect log lambda in ``[lam_low, lam_high]`` for ``target`` (see the module docstring). ``search_at(lam)``
    returns ``(plain network, info)``; each distinct architecture is measured once. Stops when a try meets the
    target within ``tolerance`` (ratio <= value * (1 + tolerance)), after ``max_tries``, or when ``patience``
    tries in a row gave architectures already measured. ``on_try`` sees the path so far after every try (to write
    it to disk)."""
    from darc.bench.signature import architecture_signature

    if target.metric == "lam":
        raise ValueError("a lambda target needs no search: run one search at that lambda")
    check_lambda_range(lam_low, lam_high)
    lo, hi = math.log(lam_low), math.log(lam_high)
    tries: list[LambdaTry] = []
    measured: dict[str, Measurement] = {}
    models: dict[str, nn.Module] = {}
    best: int | None = None
    stale, stopped = 0, f"max_tries ({max_tries})"
    for _ in range(int(max_tries)):
        lam = math.exp((lo + hi) / 2)
        try:
            model, info = search_at(lam)
        except (UnsafeRemovalError, FloatingPointError) as exc:  # past what the network can lose (or a search
            # that diverged, darc.train.NonFiniteLossError): recorded, and a smaller lambda tried
            tries.append(LambdaTry(lam, "refused", math.nan, math.nan, math.nan, False, False, {"refused": str(exc)}))
            if log:
                log(f"lambda {lam:.4g}: the network it gives is refused ({exc}) -> try a smaller lambda")
            hi = math.log(lam)
            if on_try:
                on_try(LambdaPath(target, tries, best, "running", models))
            continue
        sig = architecture_signature(model)
        reused = sig in measured
        if not reused:
            measured[sig] = measure(target.metric, base, model, input_shape, batch_size=target.batch_size,
                                    threads=threads, pairs=pairs, min_block_time=min_block_time, device=device)
            models[sig] = model
        m = measured[sig]
        met = m.ratio >= target.value
        tries.append(LambdaTry(lam, sig, m.ratio, m.q25, m.q75, met, reused,
                               {**info, "timing_noisy": bool(m.detail.get("noisy", False))}))
        if log:
            log(f"lambda {lam:.4g}: {target.metric} ratio {m.ratio:.3f} [{m.q25:.3f}, {m.q75:.3f}]"
                f"{' (same network as before)' if reused else ''} -> {'meets' if met else 'misses'} {target}")
        if met and (best is None or lam < tries[best].lam):
            best = len(tries) - 1
        if met:
            hi = math.log(lam)
        else:
            lo = math.log(lam)
        stale = stale + 1 if reused else 0
        done = None
        if met and m.ratio <= target.value * (1 + tolerance):
            done = "met within tolerance"
        elif stale >= patience:
            done = f"the architecture stopped changing ({patience} tries found no new one)"
        if on_try:
            on_try(LambdaPath(target, tries, best, done or "running", models))
        if done:
            stopped = done
            break
    return LambdaPath(target, tries, best, stopped, models)

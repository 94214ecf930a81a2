"""Figures of the theory experiments, drawn from the tidy tables of :mod:`theory.experiments`."""

from __future__ import annotations

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

COLORS = {"l1": "C0", "shared": "C2", "box": "C3", "weighted": "C4"}


def _pooled(df: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per x; ``se`` of that mean from the per-seed sampling errors; the bound."""
    g = df.groupby("x")
    return pd.DataFrame({
        "estimate": g["estimate"].mean(),
        "se": g["se"].apply(lambda s: np.sqrt(np.sum(np.square(s))) / len(s)),
        "bound": g["bound"].mean(),
    }).reset_index()


def _curve(ax, df, label, color, marker="o", bound=True, bound_label=None, linestyle="-"):
    if df.empty:
        return
    p = _pooled(df)
    ax.errorbar(p["x"], p["estimate"], yerr=3 * p["se"], color=color, marker=marker, ms=3,
                linestyle=linestyle, capsize=2, label=label)
    if bound:
        ax.plot(p["x"], p["bound"], color=color, linestyle="--", lw=1, label=bound_label or f"{label}: bound")


def linear_figure(linear: pd.DataFrame, weighted: pd.DataFrame):
    """(a) l1 gates and a shared map against k; (b) the box contrast; (c) weighted; (d) penalised."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    mc = linear[linear["method"] == "monte_carlo"]
    ax = axes[0, 0]
    for i, p in enumerate(sorted(mc["p"].unique())):
        part = mc[(mc["p"] == p) & (mc["gate"] == "l1")]
        _curve(ax, part, f"l1 gates, p={p}", f"C{i}", bound=(i == 0), bound_label="A W B (1+sqrt(2 ln k))/sqrt(n)")
    part = mc[(mc["p"] == mc["p"].min()) & (mc["gate"] == "shared")]
    _curve(ax, part, "shared map", COLORS["shared"], marker="s", bound_label="A W B / sqrt(n)")
    ax.set(xscale="log", xlabel="candidates k", ylabel="R_S (exact sup, MC mean ± 3 SE)",
           title="(a) l1-gated linear class")
    ax.legend(fontsize=7)

    ax = axes[0, 1]
    p0 = mc["p"].min()
    for gate in ("l1", "box"):
        _curve(ax, mc[(mc["p"] == p0) & (mc["gate"] == gate)], f"{gate} gates", COLORS[gate])
    ax.set(xscale="log", yscale="log", xlabel="candidates k", ylabel="R_S",
           title=f"(b) box contrast grows linearly in k (p={p0})")
    ax.legend(fontsize=7)

    ax = axes[1, 0]
    w = weighted[weighted["experiment"] == "weighted"]
    w = w[w["x"] > 0]
    if not w.empty:
        _curve(ax, w, "weighted class", COLORS["weighted"], bound_label="A = A'/c_min")
        ref = w.groupby("x")["bound_refined"].mean()
        ax.plot(ref.index, ref.values, color="k", linestyle=":", lw=1, label="refined (per-candidate costs)")
    ax.set(xscale="log", yscale="log", xlabel="cost of the cheapest candidate c_min",
           ylabel="R_S", title="(c) sum c|alpha| <= A': blows up as c_min -> 0")
    ax.legend(fontsize=7)

    ax = axes[1, 1]
    pen = weighted[weighted["experiment"] == "penalised"]
    if not pen.empty:
        g = pen.groupby("x")
        ax.plot(g["estimate"].mean().index, g["estimate"].mean().values, "o-", ms=3,
                color=COLORS["weighted"], label="sum c|alpha| at the penalised optimum")
        ax.plot(g["bound"].mean().index, g["bound"].mean().values, "--", color=COLORS["weighted"], lw=1,
                label="ell(0) / lambda")
    ax.set(xscale="log", yscale="log", xlabel="penalty lambda", ylabel="weighted radius A'",
           title="(d) penalised form lies in the constrained class")
    ax.legend(fontsize=7)
    fig.suptitle("Linear gated models: empirical Rademacher complexity versus the bounds (synthetic data)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def hidden_figure(hidden: pd.DataFrame):
    """(a) l1 versus box gates against the width m; (b) T unit types."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    h = hidden[hidden["experiment"] == "hidden"]
    ax = axes[0]
    for gate in ("l1", "box"):
        _curve(ax, h[(h["gate"] == gate) & (h["method"] == "reduction")], f"{gate} gates (reduction)",
               COLORS[gate], bound_label=f"{gate} gates: bound")
        _curve(ax, h[(h["gate"] == gate) & (h["method"] == "joint")], f"{gate} gates (whole network)",
               COLORS[gate], marker="x", bound=False, linestyle=":")
    ax.set(xscale="log", yscale="log", xlabel="hidden units m", ylabel="R_S lower estimate (mean ± 3 SE)",
           title="(a) one hidden layer: l1 gates are width-free")
    ax.legend(fontsize=7)
    ax = axes[1]
    t = hidden[(hidden["experiment"] == "hidden_types") & (hidden["method"] != "enumeration")]
    _curve(ax, t, "l1 gates, T unit types", COLORS["l1"], bound_label="A V U B (2+sqrt(2 ln T))/sqrt(n)")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set(xlabel="unit types T", ylabel="R_S lower estimate", title="(b) mixing T unit types")
    ax.legend(fontsize=7)
    fig.suptitle("One hidden layer of gated units (certified lower estimates versus upper bounds)", fontsize=10)
    fig.tight_layout()
    return fig


def gap_figure(gap: pd.DataFrame):
    """Train/test ramp-loss gap against the width, l1 versus box gates, mean ± SE over seeds."""
    runs = gap[gap["experiment"] == "gap"]
    slopes = gap[gap["experiment"] == "gap_slope"]
    families = list(dict.fromkeys(runs["family"]))
    fig, axes = plt.subplots(1, len(families), figsize=(5 * len(families), 4), squeeze=False)
    for ax, family in zip(axes[0], families):
        part = runs[runs["family"] == family]
        for gate in ("l1", "box"):
            g = part[part["gate"] == gate].groupby("x")
            mean, se = g["estimate"].mean(), g["estimate"].sem().fillna(0)
            sl = slopes[(slopes["family"] == family) & (slopes["gate"] == gate)]["estimate"]
            label = f"{gate} gates: slope {sl.mean():.3f} ± {sl.sem() if len(sl) > 1 else 0:.3f} / doubling"
            ax.errorbar(mean.index, mean.values, yerr=se.values, marker="o", ms=3, capsize=2,
                        color=COLORS[gate], label=label)
            e01 = g["gap_01"].mean()
            ax.plot(e01.index, e01.values, linestyle=":", color=COLORS[gate], lw=1, label=f"{gate}: 0-1 error gap")
        name = "candidates k" if family == "linear" else "hidden units m"
        ax.set(xscale="log", xlabel=name, ylabel="test - train ramp loss",
               title=f"{family} family (n={int(part['n'].iloc[0])}, {part['seed'].nunique()} seeds)")
        ax.axhline(0, color="grey", lw=0.5)
        ax.legend(fontsize=7)
    fig.suptitle("Generalisation gap: l1-gated versus box-gated models, same training", fontsize=10)
    fig.tight_layout()
    return fig


FIGURES = {"linear": linear_figure, "hidden": hidden_figure, "gap": gap_figure}

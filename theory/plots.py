"""Figures of the theory experiments, drawn from the tidy tables of :mod:`theory.experiments`."""

from __future__ import annotations

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from theory import fits  # noqa: E402

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
    mc = linear[(linear["signs"] == "monte_carlo") & (linear["method"] == "exact")]
    ax = axes[0, 0]
    for i, p in enumerate(sorted(mc["p"].unique())):
        part = mc[(mc["p"] == p) & (mc["gate"] == "l1")]
        _curve(ax, part, f"l1 gates, p={p}", f"C{i}", bound=(i == 0), bound_label="A W B (1+sqrt(2 ln k))/sqrt(n)")
    shared = linear[linear["gate"] == "shared"]
    if not shared.empty:
        _curve(ax, shared, f"shared map, whole class by brute force (n={int(shared['n'].iloc[0])}, all signs)",
               COLORS["shared"], marker="s", bound_label="A W B / sqrt(n) (that n)")
        ref = shared.groupby("x")["reference"].mean()
        ax.plot(ref.index, ref.values, ":", color=COLORS["shared"], lw=1, label="shared map: exact k = 1 value")
    ax.set(xscale="log", xlabel="candidates k", ylabel="R_S (exact sup, MC mean ± 3 SE)",
           title="(a) l1-gated linear class")
    ax.legend(fontsize=6)

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
                label="ell0 / lambda (ell0 = 1/2 for every sample)")
    ax.set(xscale="log", yscale="log", xlabel="penalty lambda", ylabel="weighted radius A'",
           title="(d) penalised form lies in the constrained class")
    ax.legend(fontsize=7)
    fig.suptitle("Linear gated models (constrained weights; not full DARC networks): empirical Rademacher "
                 "complexity versus the bounds, synthetic data", fontsize=9)
    fig.tight_layout()
    return fig


def hidden_figure(hidden: pd.DataFrame):
    """(a) l1 versus box gates against the width m (reduction and whole network); (b) T unit types."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    h = hidden[hidden["experiment"] == "hidden"]
    ax = axes[0]
    for gate in ("l1", "box"):
        red = h[(h["gate"] == gate) & (h["method"] == "reduction") & (h["signs"] == "monte_carlo")]
        sup = red["sup"].iloc[0] if not red.empty else ""
        _curve(ax, red, f"{gate} gates: gate set on the one-unit sup ({sup})", COLORS[gate],
               bound_label=f"{gate} gates: bound")
        _curve(ax, h[(h["gate"] == gate) & (h["method"] == "joint")], f"{gate} gates: whole network (ascent)",
               COLORS[gate], marker="x", bound=False, linestyle=":")
    ax.set(xscale="log", yscale="log", xlabel="hidden units m", ylabel="R_S (mean ± 3 SE)",
           title="(a) one hidden layer: l1 gates are width-free")
    ax.legend(fontsize=6)
    ax = axes[1]
    t = hidden[(hidden["experiment"] == "hidden_types") & (hidden["signs"] == "monte_carlo")]
    _curve(ax, t, "l1 gates, T unit types", COLORS["l1"], bound_label="A V U B (2+sqrt(2 ln T))/sqrt(n)")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set(xlabel="unit types T", ylabel="R_S", title="(b) mixing T unit types")
    ax.legend(fontsize=7)
    fig.suptitle("One hidden layer of gated units (constrained weights; not full DARC networks), synthetic data",
                 fontsize=9)
    fig.tight_layout()
    return fig


def gap_figure(gap: pd.DataFrame):
    """Per family: the train/test ramp-loss gap with the fitted predicted growth (top) and the losses
    themselves (bottom); last column: the non-vacuous example."""
    runs = gap[gap["experiment"] == "gap"]
    fits_ = gap[gap["experiment"] == "gap_fit"]
    nv = gap[gap["experiment"] == "nonvacuous"]
    families = list(dict.fromkeys(runs["family"]))
    cols = len(families) + (not nv.empty)
    fig, axes = plt.subplots(2, cols, figsize=(4.6 * cols, 7), squeeze=False)
    for col, family in enumerate(families):
        part = runs[runs["family"] == family]
        ax, lax = axes[0, col], axes[1, col]
        for gate in ("l1", "box"):
            g = part[part["gate"] == gate].groupby("x")
            mean, se = g["estimate"].mean(), g["estimate"].sem().fillna(0)
            f = fits_[(fits_["family"] == family) & (fits_["gate"] == gate) & fits_["predicted"].astype(bool)]
            shape = f["shape"].iloc[0] if not f.empty else "sqrt_log"
            b, bse = f["estimate"].mean(), f["estimate"].sem() if len(f) > 1 else 0.0
            name = {"sqrt_log": "sqrt(ln w)", "linear": "w"}[shape]
            bound_b, r2 = f["bound_coefficient"].mean(), f["r2"].mean()
            label = f"{gate}: gap = a + b {name}, b = {b:.2g} ± {bse:.1g} (bound's b {bound_b:.2g}), R² {r2:.2f}"
            ax.errorbar(mean.index, mean.values, yerr=se.values, marker="o", ms=3, capsize=2, color=COLORS[gate],
                        linestyle="none", label=label)
            xs = np.array(sorted(mean.index), dtype=float)
            ax.plot(xs, f["intercept"].mean() + b * fits.SHAPES[shape](xs), color=COLORS[gate], lw=1)
            for col_name, style in (("test_loss", "-"), ("train_loss", ":")):
                m = g[col_name].mean()
                lax.plot(m.index, m.values, style, marker="o", ms=3, color=COLORS[gate],
                         label=f"{gate}: {col_name.replace('_', ' ')}")
        name = "candidates k" if family == "linear" else "hidden units m"
        ax.set(xscale="log", xlabel=name, ylabel="test - train ramp loss",
               title=f"{family} family, nested tasks (n={int(part['n'].iloc[0])}, {part['seed'].nunique()} seeds)")
        ax.axhline(0, color="grey", lw=0.5)
        ax.legend(fontsize=6)
        lax.set(xscale="log", xlabel=name, ylabel="ramp loss (mean over seeds)", title=f"{family}: the losses")
        lax.legend(fontsize=6)
    if not nv.empty:
        ax = axes[0, -1]
        r = nv.iloc[0]
        vals = [r["train_loss"], r["test_loss"], r["train_loss"] + r["bound"]]
        ax.bar(["train", "test", "bound on\nthe risk"], vals, color=["C7", "C0", "C3"])
        ax.axhline(1.0, color="k", lw=0.8, linestyle="--", label="1: a vacuous bound")
        ax.set(ylabel="ramp loss", ylim=(0, 1.1),
               title=f"non-vacuous: {r['family']}, l1, k={int(r['x'])}, n={int(r['n'])}")
        ax.legend(fontsize=6, loc="upper left")
        info = axes[1, -1]
        info.axis("off")
        info.text(0.0, 0.95, "\n".join([
            f"l1-gated {r['family']} model, k = {int(r['x'])}, n = {int(r['n'])} training points",
            f"train ramp loss {r['train_loss']:.3f}, test {r['test_loss']:.3f} ± {r['test_loss_se']:.3f}",
            f"measured gap {r['estimate']:.3f} <= slack 2 R_S bound + 3 sqrt(ln(2/delta)/2n) = {r['bound']:.3f}",
            f"bound on the risk: {r['risk_bound']:.3f} < 1 (delta = {r['delta']:g})",
            f"0-1 error: train {r['train_err']:.3f}, test {r['test_err']:.3f}",
        ]), va="top", fontsize=8, transform=info.transAxes)
    fig.suptitle("Generalisation gap: l1-gated versus box-gated models, same training (synthetic data)", fontsize=10)
    fig.tight_layout()
    return fig


def tightness_figure(tightness: pd.DataFrame):
    """(a) the best certified estimate / bound per bound; (b) the linear bound's ratio against k;
    (c) the known bounds relative to ours."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    t = tightness[tightness["experiment"] == "tightness"]
    best = t.loc[t.groupby("bound_name")["ratio"].idxmax()].sort_values("ratio")
    ax = axes[0]
    ax.barh(best["bound_name"], best["ratio"], color=["C3" if r < 2 / 3 else "C0" for r in best["ratio"]])
    for y, (_, r) in enumerate(best.iterrows()):
        inside = r["ratio"] > 0.75
        ax.text(0.02 if inside else r["ratio"] + 0.02, y,
                f"{r['construction']}: caught if shrunk > {r['shrink_caught']:.2f}x", va="center",
                fontsize=6, color="w" if inside else "k")
    for v, label in ((1.0, "bound"), (2 / 3, "1.5x"), (0.5, "2x")):
        ax.axvline(v, color="k", lw=0.8, linestyle="--" if v < 1 else "-")
        ax.text(v, len(best) - 0.5, label, fontsize=6, ha="right", va="bottom")
    ax.set(xlim=(0, 1.05), xlabel="certified estimate / bound (largest over constructions)",
           title="(a) how close a certified value comes")
    ax = axes[1]
    lin = t[(t["bound_name"] == "linear_gated") & (t["signs"] == "all")]  # not the sampled patterns (k = 2^(n-1))
    for i, (construction, part) in enumerate(lin.groupby("construction")):
        part = part.sort_values("x")
        ax.plot(part["x"], part["ratio"], "o-", ms=4, color=f"C{i}", label=construction)
    ax.set(xscale="log", ylim=(0, 1.05), xlabel="candidates k", ylabel="certified estimate / our bound",
           title=f"(b) linear l1 bound, exact over all 2^{int(lin['n'].iloc[0])} signs" if not lin.empty else "")
    ax.legend(fontsize=7)
    ax = axes[2]
    known = tightness[tightness["experiment"] == "known_bounds"]
    for name, style in (("massart_l1", "s-"), ("group_norm", "^-")):
        part = known[known["bound_name"] == name].sort_values("x")
        p = part["p"].iloc[0] if not part.empty else ""
        ax.plot(part["x"], part["relative_to_ours"], style, ms=4, label=f"{name} (p = {p}) / ours")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set(xscale="log", xlabel="candidates k", ylabel="known bound / our bound  (< 1: known is tighter)",
           title="(c) known bounds beside ours")
    ax.legend(fontsize=7)
    fig.suptitle("Falsifiable checks: each bound against a certified value (mean over all sign vectors of a value "
                 "attained by an explicit model); simplified classes, not full DARC networks", fontsize=9)
    fig.tight_layout()
    return fig


def rates_figure(rates: pd.DataFrame, gap: pd.DataFrame | None = None):
    """(a) R_S against n on log-log axes, with the fitted slope (theory: -1/2); (b) beside it, the
    generalisation gap against n at a fixed width (the gap experiment's n-sweep), with its bound."""
    sweep = pd.DataFrame() if gap is None else gap[gap["experiment"] == "gap_n"]
    fig, axes = plt.subplots(1, 2 if not sweep.empty else 1, figsize=(12 if not sweep.empty else 6, 4.5),
                             squeeze=False)
    ax = axes[0, 0]
    pts = rates[rates["experiment"] == "rates"]
    slopes = rates[rates["experiment"] == "rate_slope"].set_index("family")
    for i, (family, part) in enumerate(pts.groupby("family")):
        s = slopes.loc[family]
        _curve(ax, part, f"{family}: slope {s['estimate']:.3f} ± {s['se']:.3f}", f"C{i}",
               bound_label=f"{family}: bound (slope -1/2)")
    ax.set(xscale="log", yscale="log", xlabel="sample size n", ylabel="R_S (exact sup, MC mean ± 3 SE)",
           title="(a) R_S against n: fitted log-log slope (theory: -0.5)")
    ax.legend(fontsize=7)
    if not sweep.empty:
        ax = axes[0, 1]
        fitted = gap[gap["experiment"] == "gap_n_slope"].set_index(["family", "gate"])
        for i, ((family, gate), part) in enumerate(sweep.groupby(["family", "gate"])):
            g = part.groupby("x")
            mean, se = g["estimate"].mean(), g["estimate"].sem().fillna(0)
            slope = fitted.loc[(family, gate)]
            ax.errorbar(mean.index, mean.values, yerr=se.values, marker="o", ms=3, capsize=2, color=f"C{i}",
                        label=f"{family}, {gate}: gap slope {slope['estimate']:.2f} ± {slope['se']:.2f} "
                              f"(bound's {slope['bound_slope']:.2f})")
        width = int(sweep["width"].iloc[0])
        ax.set(xscale="log", yscale="log", xlabel="training points n", ylabel="test - train ramp loss (mean ± SE)",
               title=f"(b) the generalisation gap against n (width {width}, {sweep['seed'].nunique()} seeds)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


FIGURES = {"linear": linear_figure, "hidden": hidden_figure, "gap": gap_figure, "tightness": tightness_figure,
           "rates": rates_figure}

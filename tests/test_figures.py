"""The trade-off figure shows the accuracy window that decides: the reference, the operating points and the
matched peers inside it, a far-off point on the lower edge with its value, ratios on log axes."""

import matplotlib
import pandas as pd
import pytest

from darc import reporting

matplotlib.use("Agg")


def _runs() -> pd.DataFrame:
    rows = [("base", None, None, 0.940, 1.0, 1.0), ("reference", None, None, 0.939, 1.0, 1.0),
            ("darc", 0.1, "no_loss", 0.938, 1.02, 1.0), ("darc", 8.0, "loss_1pct", 0.930, 1.9, 3.3),
            ("darc", 64.0, None, 0.54, 8.0, 50.0), ("tp_latency", 8.0, None, 0.928, 1.88, 3.0),
            ("sss", 5.0, None, 0.86, 2.7, 2.4)]
    frame = pd.DataFrame(rows, columns=["role", "lam", "point", "test_acc", "speedup_b1", "param_reduction"])
    frame["seed"] = 0
    frame[["model", "dataset", "scale", "threads", "dataset_is_stand_in"]] = ["wrn16_2", "fashion-mnist", "default",
                                                                              1, True]
    return frame


def test_the_window_holds_the_deciding_points_and_leaves_out_the_far_ones():
    low, high = reporting.tradeoff_window(_runs())
    assert low == pytest.approx(93.9 - 1.5 - 0.4) and high == pytest.approx(94.0 + 0.4)
    assert low < 92.8 < 93.0 < 93.9 < high  # Torch-Pruning's match, DARC's point, the reference
    assert 54.0 < low and 86.0 < low  # the all-dropped lambda and SSS lie below it


def test_far_points_sit_on_the_lower_edge_labelled_with_their_value(tmp_path, monkeypatch):
    texts = []
    real = reporting._Panel.place_labels

    def spy(panel, fontsize=7):
        texts.extend(text for _, _, text in panel.labels)
        real(panel, fontsize)

    monkeypatch.setattr(reporting._Panel, "place_labels", spy)
    csv = tmp_path / "runs.csv"
    _runs().to_csv(csv, index=False)
    reporting.tradeoff_figure(csv, tmp_path / "f.png", tmp_path / "f.pdf", batch=1)
    assert (tmp_path / "f.png").stat().st_size > 0
    assert "λ=64: 54.0 %" in texts and "SSS λ=5: 86.0 %" in texts and "λ=8" in texts


def test_each_gates_panel_says_whether_its_live_candidates_settled(tmp_path, monkeypatch):
    import json

    import matplotlib.axes

    trace = {0.0: (0.25, 0.25), 0.5: (0.3, 0.1), 1.0: (0.33, 0.0)}  # y reaches zero in the last half
    dirs = []
    for lam, moving in ((1.0, True), (8.0, False)):  # dwsep falls to zero at lambda 1, holds at 0.1 at lambda 8
        d = tmp_path / f"lam{lam:g}"
        d.mkdir()
        meta = {"lam": lam, "cost_model": "latency", "model": "wrn16_2", "dataset": "fashion-mnist", "scale": "smoke"}
        (d / "result.json").write_text(json.dumps(meta))
        rows = [{"t": t, "phase": "search", "slot": "s", "candidate": c, "gate": g}
                for t, (x, y) in trace.items() for c, g in (("original", x), ("dwsep", y if moving else 0.1))]
        (d / "gates.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        dirs.append(d)
    titles = []
    real = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", lambda ax, text, *a, **k: titles.append(text)
                        or real(ax, text, *a, **k))
    reporting.gates_figure(dirs, tmp_path / "g.png", tmp_path / "g.pdf")
    assert (tmp_path / "g.png").exists() and (tmp_path / "g.pdf").exists()
    assert "1 gate(s) hit/left zero" in titles[0] and "settled, max move 0.03" in titles[1]

"""What the ESC-50 (Table 2) and AudioMNIST (Table 3) figures share: DMEL trainable vs fixed at the paper's
initial windows, with the published numbers beside ours.

A published table is ``{init ms: (learned "(min, max)" ms, DMEL "mean ± std", fixed "mean ± std")}``.
"""
from __future__ import annotations

import re

import pandas as pd

from figures.plotting import accuracy_and_window_grid, grid_row
from figures.read import finished
from figures.tables import PAIRED_COST_COLUMN, PAIRED_DIFF_COLUMN, PAIRED_TEST_COLUMN, mean_std, trainable_vs_fixed


def with_init_ms(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` plus ``init_ms``: the initial window 6 lambda in ms (``init_window_ms``, else from ``init_lambd``)."""
    df = df.copy()
    if "config/init_window_ms" in df:
        df["init_ms"] = df["config/init_window_ms"].astype(float).round(1)
    else:
        df["init_ms"] = (6000.0 * df["config/init_lambd"] / df["config/sample_rate"]).round(1)
    return df


def _published(cell: str) -> tuple[float, float] | None:
    """``"87.3 ± 1.0"`` -> ``(87.3, 1.0)``; ``"(25, 27)"`` -> ``(25.0, 27.0)``."""
    numbers = [float(v) for v in re.findall(r"\d+(?:\.\d+)?", cell)]
    return (numbers[0], numbers[1]) if len(numbers) == 2 else None


FOLD = "config/fold"  # the unit of the fold protocol's statistics
PAIRED_FOLDS_CAPTION = (" Δ: trainable minus fixed accuracy of the runs that share fold and seed (pp), averaged"
                        " per fold; mean over folds and percentile-bootstrap 95 % CI; p: two-sided Wilcoxon"
                        " signed-rank test over the folds; n: folds.")


def paper_table(df: pd.DataFrame, acc_col: str, uar_col: str, paper: dict, paper_model: str,
                over: str = "samples") -> pd.DataFrame:
    """One row per (model, initial window): learned window (ms, min-max over trainable runs), DMEL and fixed
    accuracy ``mean ± std`` (%), their paired difference (trainable minus fixed runs of one seed: mean
    with a bootstrap 95 % interval, Wilcoxon p, number of pairs), DMEL and fixed ``uar_col`` (the unweighted
    average recall, :func:`figures.tables.uar_column`) like the accuracy, the counts, the cost, the model
    statistics of the trainable and of the fixed runs (:func:`figures.tables.paired_model_stat_cells`), and
    the published cells for ``paper_model``'s rows.

    ``over="folds"``: ``df`` holds ``config/fold``; the accuracy (and the UAR) is first averaged over the
    samples of each fold, then ``mean ± std`` is taken over the folds (the ESC-50 literature's number);
    likewise the paired difference is averaged over the pairs (fold, seed) of each fold, and its statistics
    are taken over the folds (``n`` counts folds).
    """
    rows = []
    for (model, init), part in df.groupby(["config/model_name", "init_ms"]):
        ours = trainable_vs_fixed(part, acc_col, "best_lambd_ms", ".0f", FOLD if over == "folds" else None, uar_col)
        if over == "folds":
            for trainable, key in ((True, "trainable"), (False, "fixed")):
                sub = finished(part[part["config/trainable"] == trainable])
                for col, cell in ((acc_col, key), (uar_col, f"{key}_uar")):
                    ours[cell] = mean_std(sub.groupby(FOLD)[col].mean()) if len(sub) and col in sub else "-"
            ours["n"] += f" ({part[FOLD].nunique()} folds)"
        published = paper.get(int(round(init))) if model == paper_model else None
        rows.append({"model": model, "init (ms)": f"{init:g}", "learned (ms, min-max)": ours["learned"],
                     "DMEL acc %": ours["trainable"], "fixed acc %": ours["fixed"],
                     PAIRED_DIFF_COLUMN: ours["difference"], PAIRED_TEST_COLUMN: ours["wilcoxon"],
                     "DMEL UAR %": ours["trainable_uar"], "fixed UAR %": ours["fixed_uar"],
                     "n finished/total (trainable, fixed)": ours["n"], PAIRED_COST_COLUMN: ours["cost"],
                     **ours["stats"], "paper learned (ms)": published[0] if published else "-",
                     "paper DMEL %": published[1] if published else "-",
                     "paper fixed %": published[2] if published else "-"})
    return pd.DataFrame(rows)


def paper_figure(df: pd.DataFrame, acc_col: str, paper: dict, paper_model: str, init_col: str = "init_ms",
                 learned_col: str = "best_lambd_ms", unit: str = "ms", **grid_kwargs):
    """The figure-3 layout: per model, accuracy against the initial window and the learned window against
    the initial window, trainable vs fixed (means, min-max bars), and the paired difference trainable minus
    fixed with its 95 % interval (:func:`figures.plotting.accuracy_and_window_grid`; ``pair_unit`` in
    ``grid_kwargs``); the published means ± std (and learned ranges) of ``paper_model`` drawn beside them
    as hollow grey markers."""
    fig = accuracy_and_window_grid(df, acc_col, init_col, learned_col, unit, **grid_kwargs)
    models = sorted(df["config/model_name"].unique())
    if paper_model not in models:
        return fig
    ax_acc, ax_win, _ = grid_row(fig, models.index(paper_model))
    for k, (init, (learned, dmel, fixed)) in enumerate(sorted(paper.items())):
        for cell, marker, label in ((dmel, "o", "DMEL paper, trainable"), (fixed, "s", "DMEL paper, fixed")):
            value = _published(cell)
            if value:
                ax_acc.errorbar([init * 1.1], [value[0]], yerr=[value[1]], marker=marker, mfc="none", color="gray",
                                capsize=2, ls="none", label=label if k == 0 else None)
        span = _published(learned)
        if span:
            ax_win.errorbar([init * 1.1], [sum(span) / 2], yerr=[[sum(span) / 2 - span[0]], [span[1] - sum(span) / 2]],
                            marker="o", mfc="none", color="gray", capsize=2, ls="none",
                            label="DMEL paper, learned (min-max)" if k == 0 else None)
    ax_acc.legend(fontsize=7)
    ax_win.legend(fontsize=7)
    return fig

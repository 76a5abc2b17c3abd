"""The front-end bench (``search_spaces.frontends``): every front-end of the registry on FSDD, one classifier.

``tables/<split>_frontends``: accuracy and unweighted average recall (UAR; mean ± std over samples), how far
each front-end's learnable parameters moved from their initialisation at the end of training (mean over
samples of each ``frontend_*`` drift metric the front-end reports), the cost (training seconds and epochs per
trial), ``n`` finished/total, and the model statistics (learnable front-end parameters, MFLOP per input for
the front-end and the head, CPU latency per input: :func:`figures.tables.model_stat_cells`).
``<split>_frontends``: accuracy per front-end (points are samples, bars the mean).
``drift_frontends``: every drift metric over epochs (mean over samples), one panel per front-end, so a
front-end whose parameters never leave their initialisation shows as a flat line at 0.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from figures.labels import data_caption, with_frontends
from figures.plotting import save
from figures.provenance import source_line
from figures.read import finished
from figures.tables import COST_COLUMN, cost, count, mean_std, model_stat_cells, stats_caption, uar_column, write_table

NAME = "frontends"


def drift_columns(df: pd.DataFrame) -> list[str]:
    """The ``frontend_*`` drift metrics that some trial of ``df`` reports (not all NaN), sorted."""
    return sorted(c for c in df.columns if c.startswith("frontend_") and df[c].notna().any())


def drift_summary(part: pd.DataFrame, columns: list[str]) -> str:
    """``"name value, ..."``: the mean over ``part``'s rows of each drift metric they report
    (3 significant digits, the ``frontend_`` prefix dropped); ``"-"`` for a front-end with none."""
    cells = [f"{c.removeprefix('frontend_')} {part[c].mean():.3g}" for c in columns if part[c].notna().any()]
    return ", ".join(cells) or "-"


def bench_table(everything: pd.DataFrame, acc_col: str, uar_col: str | None = None,
                stats: bool = False) -> pd.DataFrame:
    """One row per front-end label of ``everything`` (every trial, finished or not): accuracy
    ``mean ± std`` (%) over the finished trials (and ``uar_col``'s, the unweighted average recall, beside it
    when given), the final drift of each learnable group, the cost (:func:`figures.tables.cost`: mean
    training seconds and epochs per trial), ``n`` and, with ``stats``, the model statistics
    (:func:`figures.tables.model_stat_cells`)."""
    columns = drift_columns(everything)
    rows = []
    for label, part in everything.groupby("frontend", sort=True):
        done = finished(part)
        row = {"front-end": label, "accuracy (%)": mean_std(done[acc_col]) if acc_col in done else "-"}
        if uar_col is not None:
            row["UAR (%)"] = mean_std(done[uar_col]) if uar_col in done else "-"
        rows.append({**row, "drift from initialisation (end of training)": drift_summary(done, columns),
                     COST_COLUMN: cost(part), "n": count(part), **(model_stat_cells(part) if stats else {})})
    return pd.DataFrame(rows)


def accuracy_figure(df: pd.DataFrame, acc_col: str, acc_label: str, data: str = "FSDD"):
    """Accuracy per front-end: each finished trial a dot, the mean a bar."""
    labels = sorted(df["frontend"].unique())
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(labels) + 1.5), 3.6))
    for i, label in enumerate(labels):
        acc = df.loc[df["frontend"] == label, acc_col].dropna() * 100
        ax.bar(i, acc.mean(), color="tab:blue", alpha=0.35, width=0.7)
        ax.plot(np.full(len(acc), i), acc, "o", color="tab:blue", ms=4)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel(acc_label)
    ax.set_title(f"{data}, one classifier, every front-end")
    ax.grid(axis="y", alpha=0.3)
    return fig


def drift_figure(df: pd.DataFrame, histories: dict[str, pd.DataFrame]):
    """One panel per front-end with drift metrics: each metric's mean over samples against the epoch."""
    columns = drift_columns(df)
    labels = [label for label in sorted(df["frontend"].unique())
              if any(df.loc[df["frontend"] == label, c].notna().any() for c in columns)]
    if not labels:
        return None
    ncols = min(3, len(labels))
    nrows = math.ceil(len(labels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 4.0 * nrows), squeeze=False)
    for ax, label in zip(axes.flat, labels):
        frames = [histories[t] for t in df.loc[df["frontend"] == label, "trial_id"] if t in histories]
        curves = pd.concat(frames) if frames else pd.DataFrame()
        for c in columns:
            if c in curves and curves[c].notna().any():
                mean = curves.groupby("epoch")[c].mean()
                ax.plot(mean.index + 1, mean.values, marker=".", label=c.removeprefix("frontend_"))
        ax.set_title(label)
        ax.set_xlabel("epoch")
        ax.set_ylabel("change from initialisation")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(labels):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def produce(load, split: str, out_dir: Path, table_dir: Path) -> None:
    """``load(name)`` gives ``(df, histories)`` of an experiment or ``None``."""
    loaded = load(NAME)
    if loaded is None:
        return
    everything, histories = with_frontends(loaded[0]), loaded[1]
    df = finished(everything)
    acc_col = "test_accuracy" if split == "test" else "best_valid_acc"
    acc_label = f"{split} accuracy (%)"
    models = ", ".join(sorted(everything["config/model_name"].dropna().unique()))
    data = data_caption(everything, "audio_mnist", "FSDD")
    write_table(bench_table(everything, acc_col, uar_column(split)[0], stats=True), table_dir, f"{split}_{NAME}",
                f"{data}, {split} accuracy and unweighted average recall (UAR) of every front-end with the same "
                f"classifier ({models}), mean ± std over samples; drift: how far each group of learnable parameters "
                "moved from its initialisation." + stats_caption(),
                source_line(everything))
    save(accuracy_figure(df, acc_col, acc_label, data), out_dir, f"{split}_{NAME}")
    fig = drift_figure(df, histories)
    if fig is not None:
        save(fig, out_dir, "drift_frontends")

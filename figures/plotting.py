"""Shared plot helpers: grids of accuracy / learned window vs initial window, lambda curves."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter  # noqa: E402

from figures.paired import PairedStats, p_text  # noqa: E402
from figures.tables import paired_stats  # noqa: E402

COLORS = {True: "tab:blue", False: "tab:orange"}
LABELS = {True: "trainable", False: "fixed"}
DODGE = {True: 0.97, False: 1.03}  # trainable and fixed side by side on the log x-axis (equal means stay visible)


def save(fig, out_dir: Path, stem: str) -> None:
    """Save ``fig`` as ``<stem>.pdf`` and ``<stem>.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for ext in ("pdf", "png"):
        fig.savefig(out_dir / f"{stem}.{ext}", bbox_inches="tight", dpi=150)
    plt.close(fig)
    print(f"wrote {out_dir / stem}.pdf/.png")


def _plain_numbers(axis) -> None:
    """Label a log-scaled axis with plain numbers, no minor labels."""
    axis.set_major_formatter(ScalarFormatter())
    axis.set_minor_formatter(NullFormatter())


GRID_COLUMNS = 3  # accuracy_and_window_grid's panels per model: accuracy, learned window, paired difference


def grid_row(fig, row: int) -> list:
    """The axes ``[accuracy, learned window, paired difference]`` of model ``row`` (models sorted by name)
    in a figure of :func:`accuracy_and_window_grid`."""
    return fig.axes[GRID_COLUMNS * row:GRID_COLUMNS * (row + 1)]


def accuracy_and_window_grid(df: pd.DataFrame, acc_col: str, init_col: str, learned_col: str, unit: str,
                             reference: float | None = None, reference_label: str = "",
                             acc_label: str = "accuracy (%)", quantity: str = "window", pair_unit: str | None = None):
    """One row per model: accuracy vs initial window, learned vs initial window (trainable vs fixed), and
    the paired difference trainable minus fixed accuracy vs initial window.

    ``df`` holds one row per finished trial with ``config/model_name``, ``config/trainable`` and
    the named columns; points are means over samples with min-max bars, trainable drawn just left and
    fixed just right of their initial value. The third panel shows, per initial window, the mean paired
    difference in percentage points with its bootstrap 95 % interval and the Wilcoxon p
    (:func:`figures.tables.paired_stats` over runs sharing a seed, or ``pair_unit`` values such as
    ``"config/fold"``); "n/a" where fewer than 2 pairs exist. ``quantity`` names what is learned in the
    axis labels (``"window"``, ``"λ"``), ``acc_label`` the accuracy axis.
    """
    models = sorted(df["config/model_name"].unique())
    # one x-range per row: the difference panel lines up with the dodged points of the other two
    fig, axes = plt.subplots(len(models), GRID_COLUMNS, figsize=(13.5, 3.2 * len(models)), squeeze=False,
                             sharex="row")
    for row, model in enumerate(models):
        sub = df[df["config/model_name"] == model]
        ax_acc, ax_win, ax_diff = axes[row]
        for trainable in (True, False):
            part = sub[sub["config/trainable"] == trainable]
            if part.empty:
                continue
            acc = part.groupby(init_col)[acc_col].agg(["mean", "min", "max"]) * 100
            ax_acc.errorbar(acc.index * DODGE[trainable], acc["mean"], yerr=[acc["mean"] - acc["min"], acc["max"] - acc["mean"]],
                            marker="o", capsize=3, color=COLORS[trainable], label=LABELS[trainable])
            win = part.groupby(init_col)[learned_col].agg(["mean", "min", "max"])
            ax_win.errorbar(win.index * DODGE[trainable], win["mean"], yerr=[win["mean"] - win["min"], win["max"] - win["mean"]],
                            marker="o", capsize=3, color=COLORS[trainable], label=LABELS[trainable])
        if reference is not None:
            ax_win.axhline(reference, color="gray", ls="--", lw=1, label=reference_label)
        inits = sorted(sub[init_col].unique())
        _paired_panel(ax_diff, {init: paired_stats(sub[sub[init_col] == init], acc_col, pair_unit) for init in inits})
        for ax in (ax_acc, ax_win, ax_diff):
            ax.set_xscale("log")
            ax.set_xticks(inits)
            _plain_numbers(ax.xaxis)
            ax.set_xlabel(f"initial {quantity} ({unit})")
            ax.grid(alpha=0.3)
        ax_win.set_yscale("log")
        ax_win.set_yticks(sorted(set(inits) | ({reference} if reference is not None else set())))
        _plain_numbers(ax_win.yaxis)
        ax_acc.set_ylabel(acc_label)
        ax_win.set_ylabel(f"learned {quantity} ({unit}), best epoch")
        ax_diff.set_ylabel("Δ accuracy, trainable − fixed (pp)")
        ax_acc.set_title(model)
        ax_win.set_title(model)
        ax_diff.set_title(f"{model}: paired difference")
        ax_acc.legend(fontsize=8)
        ax_win.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _paired_panel(ax, by_init: dict[float, PairedStats]) -> None:
    """Per initial window (x): the mean paired difference (pp) with its 95 % interval as bars, its
    Wilcoxon p and number of pairs written above; "n/a" at 0 where there are fewer than 2 pairs."""
    ax.axhline(0.0, color="gray", lw=1)
    shown = {init: s for init, s in by_init.items() if s.n >= 2}
    if shown:
        x, s = list(shown), list(shown.values())
        mean = np.array([v.mean for v in s])
        ax.errorbar(x, mean, yerr=[mean - [v.ci_low for v in s], [v.ci_high for v in s] - mean], marker="D",
                    capsize=3, ls="none", color="tab:purple", label="mean, bootstrap 95 % CI")
        for init, v in shown.items():
            ax.annotate(f"{p_text(v.p)}\nn={v.n}", (init, v.ci_high), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7)
        ax.margins(y=0.3)  # room for the p-values above the bars
        ax.legend(fontsize=8)
    for init in sorted(set(by_init) - set(shown)):
        ax.annotate(f"n/a\nn={by_init[init].n}", (init, 0.0), xytext=(0, 3), textcoords="offset points",
                    ha="center", va="bottom", fontsize=7, color="gray")


def lambda_curves(df: pd.DataFrame, histories: dict[str, pd.DataFrame], init_col: str, value_col: str,
                  unit: str, quantity: str = "window"):
    """Learned window (``quantity``) over epochs for every trainable trial, one panel per model."""
    trainable = df[df["config/trainable"] == True]  # noqa: E712
    models = sorted(trainable["config/model_name"].unique())
    fig, axes = plt.subplots(1, max(len(models), 1), figsize=(5 * max(len(models), 1), 3.5), squeeze=False)
    cmap = plt.get_cmap("viridis")
    inits = sorted(trainable[init_col].unique())
    for ax, model in zip(axes[0], models):
        for _, trial in trainable[trainable["config/model_name"] == model].iterrows():
            hist = histories.get(trial["trial_id"])
            if hist is None or value_col not in hist:
                continue
            color = cmap(inits.index(trial[init_col]) / max(len(inits) - 1, 1))
            ax.plot(hist["epoch"], hist[value_col], color=color, lw=1, marker="o", ms=2)  # one epoch still shows
        for i, init in enumerate(inits):
            ax.plot([], [], color=cmap(i / max(len(inits) - 1, 1)), label=f"init {init:g} {unit}")
        ax.set_yscale("log")
        ax.set_yticks(inits)
        _plain_numbers(ax.yaxis)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch (0 = first)")
        ax.set_ylabel(f"{quantity} ({unit})")
        ax.set_title(model)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def frontend_comparison(df: pd.DataFrame, metrics: dict[str, str], panel_col: str, panel_title: str,
                        anchors: list[tuple[float, str]] = ()):
    """Rows: metrics (column -> axis label, values in [0, 1]); columns: values of ``panel_col``, each
    titled ``panel_title.format(value)`` (e.g. ``"{:g} s segments"``).

    Each panel plots the metric (mean over samples, min-max bars) against the initial window in ms,
    one line per front-end (``frontend``/``init_ms`` columns, see ``figures.labels.with_frontends``);
    ``anchors`` are published numbers in percent drawn as dotted lines on the first row.
    """
    panels = sorted(df[panel_col].unique())
    frontends = sorted(df["frontend"].unique())
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(len(metrics), len(panels), figsize=(4.8 * len(panels), 3.4 * len(metrics)),
                             squeeze=False, sharey="row")
    for col, panel in enumerate(panels):
        sub = df[df[panel_col] == panel]
        for row, (metric, label) in enumerate(metrics.items()):
            ax = axes[row][col]
            for k, fe in enumerate(frontends):
                part = sub[sub["frontend"] == fe]
                if part.empty:
                    continue
                stats = part.groupby("init_ms")[metric].agg(["mean", "min", "max"]) * 100
                dodge = 1 + 0.03 * (k - (len(frontends) - 1) / 2)  # equal values stay visible side by side
                ax.errorbar(stats.index * dodge, stats["mean"], yerr=[stats["mean"] - stats["min"], stats["max"] - stats["mean"]],
                            marker="os^vDP*"[k % 7], capsize=3, color=cmap(k), label=fe)
            if row == 0:
                for i, (value, text) in enumerate(anchors):
                    ax.axhline(value, color="gray", ls=":", lw=1)
                    ax.annotate(text, (1.0, value), xycoords=("axes fraction", "data"), ha="right", va="bottom",
                                fontsize=7, color="gray")
            ax.set_xscale("log")
            inits = sorted(sub["init_ms"].unique())
            ax.set_xticks(inits)
            _plain_numbers(ax.xaxis)
            ax.set_xlabel("initial window (ms)")
            ax.set_ylabel(label)
            ax.set_title(panel_title.format(panel))
            ax.grid(alpha=0.3)
    fig.tight_layout()
    # one legend for every panel, under the figure: inside a panel it hides points
    handles = {label: h for ax in axes.flat for h, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(list(handles.values()), list(handles), loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=min(len(handles), 3), fontsize=8, frameon=False)
    return fig


def confusion_figure(cm: pd.DataFrame, title: str):
    """Row-normalised confusion matrix (true rows, predicted columns) with the counts written in."""
    counts = cm.to_numpy()
    rates = counts / counts.sum(axis=1, keepdims=True).clip(min=1)
    fig, ax = plt.subplots(figsize=(1 + 0.6 * len(cm), 0.8 + 0.6 * len(cm)))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(cm)):
        for j in range(len(cm)):
            ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(cm)), cm.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(cm)), cm.index, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def learned_windows(windows: list[tuple[str, np.ndarray, np.ndarray]], sample_rate: float):
    """One panel per ``(title, learned, initial)`` window pair (samples on the x-axis in ms)."""
    n = max(len(windows), 1)
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3), squeeze=False)
    for ax, (title, learned, initial) in zip(axes[0], windows):
        t = [1000.0 * i / sample_rate for i in range(len(initial))]
        ax.plot(t, initial, color="gray", ls="--", lw=1, label="initial")
        ax.plot(t, learned, color="tab:blue", lw=1, label="learned")
        ax.set_xlabel("time (ms)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig

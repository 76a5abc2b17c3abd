"""Shared plot helpers: grids of accuracy / learned window vs initial window, lambda curves."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402

COLORS = {True: "tab:blue", False: "tab:orange"}
LABELS = {True: "trainable", False: "fixed"}


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


def accuracy_and_window_grid(df: pd.DataFrame, acc_col: str, init_col: str, learned_col: str, unit: str,
                             reference: float | None = None, reference_label: str = ""):
    """One row per model: accuracy vs initial window, learned vs initial window; trainable vs fixed.

    ``df`` holds one row per finished trial with ``config/model_name``, ``config/trainable`` and
    the named columns; points are means over samples with min-max bars.
    """
    models = sorted(df["config/model_name"].unique())
    fig, axes = plt.subplots(len(models), 2, figsize=(9, 3.2 * len(models)), squeeze=False)
    for row, model in enumerate(models):
        sub = df[df["config/model_name"] == model]
        ax_acc, ax_win = axes[row]
        for trainable in (True, False):
            part = sub[sub["config/trainable"] == trainable]
            if part.empty:
                continue
            acc = part.groupby(init_col)[acc_col].agg(["mean", "min", "max"]) * 100
            ax_acc.errorbar(acc.index, acc["mean"], yerr=[acc["mean"] - acc["min"], acc["max"] - acc["mean"]],
                            marker="o", capsize=3, color=COLORS[trainable], label=LABELS[trainable])
            win = part.groupby(init_col)[learned_col].agg(["mean", "min", "max"])
            ax_win.errorbar(win.index, win["mean"], yerr=[win["mean"] - win["min"], win["max"] - win["mean"]],
                            marker="o", capsize=3, color=COLORS[trainable], label=LABELS[trainable])
        if reference is not None:
            ax_win.axhline(reference, color="gray", ls="--", lw=1, label=reference_label)
        inits = sorted(sub[init_col].unique())
        for ax in (ax_acc, ax_win):
            ax.set_xscale("log")
            ax.set_xticks(inits)
            _plain_numbers(ax.xaxis)
            ax.set_xlabel(f"initial window ({unit})")
            ax.grid(alpha=0.3)
        ax_win.set_yscale("log")
        ax_win.set_yticks(sorted(set(inits) | ({reference} if reference is not None else set())))
        _plain_numbers(ax_win.yaxis)
        ax_acc.set_ylabel("accuracy (%)")
        ax_win.set_ylabel(f"learned window ({unit})")
        ax_acc.set_title(model)
        ax_win.set_title(model)
        ax_acc.legend(fontsize=8)
        ax_win.legend(fontsize=8)
    fig.tight_layout()
    return fig


def lambda_curves(df: pd.DataFrame, histories: dict[str, pd.DataFrame], init_col: str, value_col: str,
                  unit: str):
    """Learned window over epochs for every trainable trial, one panel per model."""
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
            ax.plot(hist["epoch"], hist[value_col], color=color, lw=1)
        for i, init in enumerate(inits):
            ax.plot([], [], color=cmap(i / max(len(inits) - 1, 1)), label=f"init {init:g} {unit}")
        ax.set_yscale("log")
        _plain_numbers(ax.yaxis)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"window ({unit})")
        ax.set_title(model)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig

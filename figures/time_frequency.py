"""Synthetic experiment: figure 1 (data example), figure 2 (test_time_frequency), Table 4, lambda curves."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from corpora import synthetic
from figures.dmel_paper import paper_figure
from figures.labels import data_caption
from figures.plotting import lambda_curves, save
from figures.provenance import source_line
from figures.read import finished
from figures.tables import PAIRED_CAPTION, PAIRED_COST_COLUMN, PAIRED_DIFF_COLUMN, PAIRED_STATS_CAPTION, \
    PAIRED_TEST_COLUMN, trainable_vs_fixed, uar_column, write_table
from models.frontends import GaussianSpectrogram

SIGMA_REF = 6.38
N_COLUMN = "n finished/total (trainable, fixed)"
# DMEL paper, Table 4 (LNet, 10 runs): lambda_init -> (learned min, max, DSPEC acc, fixed acc)
PAPER_TABLE4 = {1.3: ("(4.8, 5.6)", "98.5 ± 0.2", "95.5 ± 0.2"), 6.4: ("(5.3, 6.0)", "98.5 ± 0.2", "98.8 ± 0.3"),
                31.9: ("(3.4, 6.5)", "98.0 ± 0.4", "94.9 ± 0.4")}


def data_example(out_dir: Path, sigma_ref: float = SIGMA_REF, n_points: int = 128, noise_std: float = 0.5) -> None:
    """Figure 1: one example per class (rows) at lambda = sigma_ref, 0.2 and 5 sigma_ref (columns)."""
    x, _ = synthetic.generate(3, sigma_ref=sigma_ref, n_points=n_points, noise_std=noise_std, demo=True,
                              labels=[0, 1, 2], seed=0)
    factors = (1.0, 0.2, 5.0)
    fig, axes = plt.subplots(3, 3, figsize=(8, 8))
    for col, f in enumerate(factors):
        layer = GaussianSpectrogram(f * sigma_ref, n_points=n_points, window_mode="full", trainable=False)
        with torch.no_grad():
            spec = layer(torch.from_numpy(x)).numpy()
        for row in range(3):
            ax = axes[row, col]
            ax.imshow(spec[row], origin="lower", aspect="auto", cmap="magma",
                      extent=(0, n_points, 0, 0.5))
            if row == 0:
                ax.set_title(f"λ = {f:g} σ_ref = {f * sigma_ref:.2f}")
            if col == 0:
                ax.set_ylabel(f"{synthetic.CLASS_NAMES[row]}\nfrequency (cycles/sample)")
            if row == 2:
                ax.set_xlabel("time (samples)")
    fig.tight_layout()
    save(fig, out_dir, "data_example")


def table4(df: pd.DataFrame, acc_col: str, uar_col: str) -> pd.DataFrame:
    """Paper-style table per model and lambda_init: learned (min, max), accuracy trainable vs fixed, their
    paired difference over seeds, ``uar_col`` (the unweighted average recall) trainable vs fixed, the counts,
    the cost and the model statistics of the trainable and the fixed runs
    (:func:`figures.tables.trainable_vs_fixed`)."""
    rows = []
    for (model, init), part in df.groupby(["config/model_name", "config/init_lambd"]):
        ours = trainable_vs_fixed(part, acc_col, "best_lambd_est", ".1f", uar_col=uar_col)
        paper = PAPER_TABLE4.get(round(init, 1)) if model == "linear_net" else None
        rows.append({
            "model": model, "λ_init": f"{init:.1f}", "learned λ (min, max)": ours["learned"],
            "trainable acc %": ours["trainable"], "fixed acc %": ours["fixed"],
            PAIRED_DIFF_COLUMN: ours["difference"], PAIRED_TEST_COLUMN: ours["wilcoxon"],
            "trainable UAR %": ours["trainable_uar"], "fixed UAR %": ours["fixed_uar"], N_COLUMN: ours["n"],
            PAIRED_COST_COLUMN: ours["cost"], **ours["stats"],
            "paper learned λ": paper[0] if paper else "-", "paper DSPEC %": paper[1] if paper else "-",
            "paper fixed %": paper[2] if paper else "-",
        })
    return pd.DataFrame(rows)


def produce(load, split: str, out_dir: Path, table_dir: Path) -> None:
    """Figure 1, figure 2, Table 4 and the lambda-over-epochs plot, when the time_frequency experiment
    exists (figure 1 shows its data); ``load(name)`` gives ``(df, histories)`` of an experiment or ``None``."""
    loaded = load("time_frequency")
    if loaded is None:
        return
    data_example(out_dir)
    everything, histories = loaded
    df = finished(everything)
    acc_col = "test_accuracy" if split == "test" else "best_valid_acc"
    fig = paper_figure(df, acc_col, {init: (learned, dmel, fixed) for init, (learned, dmel, fixed) in PAPER_TABLE4.items()},
                       "linear_net", "config/init_lambd", "best_lambd_est", "samples", reference=SIGMA_REF,
                       reference_label="σ_ref", acc_label=f"{split} accuracy (%)", quantity="λ")
    save(fig, out_dir, f"{split}_time_frequency")
    data = data_caption(everything, "time_frequency", "Synthetic time-frequency data")
    write_table(table4(everything, acc_col, uar_column(split)[0]), table_dir, f"{split}_time_frequency",
                f"{data}, {split} accuracy and UAR (mean ± std over samples); "
                "paper columns: DMEL Table 4 (LNet = linear_net, 10 runs; accuracy only)." + PAIRED_CAPTION
                + PAIRED_STATS_CAPTION, source_line(everything))
    save(lambda_curves(df, histories, "config/init_lambd", "lambd_est", "samples", quantity="λ"), out_dir,
         "lambda_curves_time_frequency")

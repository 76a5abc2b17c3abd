"""deepspectrum experiment: spectrogram images into ImageNet CNNs (search_spaces.deepspectrum).

``tables/<split>_deepspectrum``: one row per front-end and CNN (and any other axis that varies), the accuracy
and the unweighted average recall (UAR) ``mean ± std`` over the finished seeds, ``finished/total``, the cost
(training seconds and epochs per trial) and the model statistics (:func:`figures.tables.model_stat_cells`),
as :func:`figures.generic.summary_table` writes every table. ``figures/<split>_deepspectrum``: the accuracy
per CNN, one bar per front-end, the mean with the seeds' minimum and maximum.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from figures.generic import summary_table
from figures.labels import data_caption, with_frontends
from figures.plotting import save
from figures.provenance import source_line
from figures.read import finished
from figures.tables import stats_caption, uar_column, write_table

NAME = "deepspectrum"


def figure(df: pd.DataFrame, acc_col: str, acc_label: str, title: str):
    """Grouped bars of ``acc_col`` (%) over the finished trials: CNNs on the x axis, one bar per front-end,
    the mean with a line from the lowest to the highest seed."""
    done = finished(df)
    cnns = sorted(done["config/cnn"].unique())
    fronts = list(dict.fromkeys(done["frontend"]))
    width = 0.8 / max(len(fronts), 1)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for k, front in enumerate(fronts):
        part = done[done["frontend"] == front].groupby("config/cnn")[acc_col].agg(["mean", "min", "max"]) * 100
        part = part.reindex(cnns)
        x = np.arange(len(cnns)) + (k - (len(fronts) - 1) / 2) * width
        ax.bar(x, part["mean"], width, label=front)
        ax.vlines(x, part["min"], part["max"], color="black", lw=1)
    ax.set_xticks(range(len(cnns)), cnns)
    ax.set_ylabel(acc_label)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def produce(load, split: str, out_dir: Path, table_dir: Path) -> None:
    loaded = load(NAME)
    if loaded is None:
        return
    df = with_frontends(loaded[0])
    acc_col, acc_name = ("test_accuracy", "test acc %") if split == "test" else ("best_valid_acc", "valid acc %")
    data = data_caption(df, "audio_mnist", "FSDD (protocol dmel)")
    if len(finished(df)):
        save(figure(df, acc_col, acc_name, f"{data}: {split} accuracy, spectrogram images into ImageNet CNNs"),
             out_dir, f"{split}_{NAME}")
    write_table(summary_table(df, acc_col, acc_name, uar_column(split), stats=True), table_dir, f"{split}_{NAME}",
                f"{NAME}, {data}: {split} accuracy and unweighted average recall (UAR) of spectrogram images "
                "(models/images.py) in torchvision CNNs, mean ± std over the finished seeds; n: finished/total "
                "trials; cost: training seconds and epochs per trial." + stats_caption("means over the finished trials"),
                source_line(df))

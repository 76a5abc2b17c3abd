"""ESC-50 experiment (DMEL paper, Table 2): PANNs CNN6 on DMEL trainable vs fixed at 10, 35 and 300 ms.

``<split>_esc50``: accuracy and learned window against the initial window (figure-3 layout) with the
published numbers, and ``tables/<split>_esc50`` (the ``dmel`` protocol: accuracy and unweighted average
recall, mean ± std over samples, and the model statistics of the trainable and the fixed runs);
``<split>_esc50_folds`` the same for the official 5-fold protocol (mean ± std over the folds of each
fold's mean over samples; the paired difference trainable minus fixed over the folds);
``lambda_curves_esc50``: the learned window over epochs.
"""
from __future__ import annotations

from pathlib import Path

from figures.dmel_paper import FOLD, PAIRED_FOLDS_CAPTION, paper_figure, paper_table, with_init_ms
from figures.labels import data_caption
from figures.plotting import lambda_curves, save
from figures.provenance import source_line
from figures.read import finished
from figures.tables import PAIRED_CAPTION, PAIRED_STATS_CAPTION, uar_column, write_table

# DMEL paper, Table 2 (ESC-50, CNN6 from scratch, 10 runs): init ms -> (learned ms, DMEL, fixed)
PAPER_TABLE2 = {10: ("(25, 27)", "87.3 ± 1.0", "84.2 ± 1.2"), 35: ("(31, 90)", "86.1 ± 1.3", "86.9 ± 0.7"),
                300: ("(117, 153)", "85.8 ± 1.2", "84.7 ± 1.1")}
MODEL = "cnn6"


def produce(load, split: str, out_dir: Path, table_dir: Path) -> None:
    """``load(name)`` gives ``(df, histories)`` of an experiment or ``None``."""
    acc_col = "test_accuracy" if split == "test" else "best_valid_acc"
    for name, over, what in (("esc50", "samples", "the DMEL code's random 70/10/20 split (protocol dmel), "
                                                  "mean ± std over samples"),
                             ("esc50_folds", "folds", "the official 5 folds (protocol fold; validation: 1/8 of the "
                                                      "training folds' source recordings), mean ± std over folds")):
        loaded = load(name)
        if loaded is None:
            continue
        everything, histories = with_init_ms(loaded[0]), loaded[1]
        df = finished(everything)
        save(paper_figure(df, acc_col, PAPER_TABLE2, MODEL, acc_label=f"{split} accuracy (%)",
                          pair_unit=FOLD if over == "folds" else None), out_dir, f"{split}_{name}")
        data = data_caption(everything, "esc50", "ESC-50")
        write_table(paper_table(everything, acc_col, uar_column(split)[0], PAPER_TABLE2, MODEL, over), table_dir,
                    f"{split}_{name}",
                    f"{data}, {split} accuracy and UAR, {what}. Paper: DMEL Table 2 (CNN6, random split, 10 runs; "
                    "accuracy only)." + (PAIRED_CAPTION if over == "samples" else PAIRED_FOLDS_CAPTION)
                    + PAIRED_STATS_CAPTION, source_line(everything))
        if name == "esc50":
            save(lambda_curves(df, histories, "init_ms", "lambd_ms", "ms"), out_dir, "lambda_curves_esc50")

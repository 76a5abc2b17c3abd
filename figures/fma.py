"""FMA experiment: the FMA CNN with its fixed log-mel and with DMEL (trainable/fixed).

``test_fma``: track-level accuracy (mean of the segments' logits) and macro-F1 against the
initial window, one panel per segment length; a table (those, the track-level unweighted average recall,
the segment accuracy, the cost and the model statistics) with the FMA system's published number;
``confusion_fma``: the confusion matrix of the best configuration, summed over samples.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from figures.labels import data_caption, with_frontends
from figures.music import anchor_rows, best_confusion, comparison_table
from figures.plotting import frontend_comparison, save
from figures.provenance import source_line
from figures.read import finished
from figures.tables import stats_caption, uar_column, write_table

ANCHORS = [(60.0, "FMA system, 3 s + ensemble: 60"), (12.5, "chance (30 s model): 12.5")]
ANCHOR_ROWS = [("FMA system (published)", "fixed log-mel, 3 s segments, ensemble", "60.0"),
               ("FMA system (published)", "30 s clips", "12.5 (chance)")]


def produce(load, split: str, out_dir: Path, table_dir: Path) -> None:
    """``load(name)`` gives ``(df, histories)`` of an experiment or ``None``."""
    loaded = load("fma")
    if loaded is None:
        return
    everything = with_frontends(loaded[0])
    df = finished(everything)
    if split == "test":
        metrics = {"test_accuracy": "track accuracy (%)", "test_macro_f1": "macro-F1 (%)"}
        columns = {"test_accuracy": "test acc % (track)", "test_macro_f1": "macro-F1 %",
                   "test_accuracy_segment": "test acc % (segment)"}
    else:
        # the best-validation-loss epoch's numbers (never the last epoch's)
        metrics = {"best_valid_acc": "valid track accuracy (%)"}
        columns = {"best_valid_acc": "valid acc % (track)", "best_valid_acc_segment": "valid acc % (segment)"}
    save(frontend_comparison(df, metrics, "config/segment_seconds", "{:g} s segments",
                             ANCHORS if split == "test" else []), out_dir, f"{split}_fma")
    table = comparison_table(everything, "config/segment_seconds", "segment (s)", columns, uar_column(split),
                             stats=True)
    table = pd.concat([table, anchor_rows(ANCHOR_ROWS, list(table.columns))], ignore_index=True)
    data = data_caption(everything, "fma", f"FMA ({df['config/fma_subset'].iloc[0]})")
    write_table(table, table_dir, f"{split}_fma",
                f"{data}, FMA CNN, {split} metrics per track (UAR: unweighted average recall), mean ± std over "
                "samples; the FMA system's published numbers below (it reported its best test epoch; we select on "
                "validation)." + stats_caption(), source_line(everything))
    if split == "test":
        best_confusion(df, "config/segment_seconds", "{:g} s segments", "test_accuracy", "fma", out_dir)

"""embedding_heads experiment: every scikit-learn head on precomputed embeddings, scored as the recipe scores.

``tables/<split>_embedding_heads``: one row per head and PCA setting: the accuracy over clips by majority vote
of the patches (the recipe's), by the mean of the patches' class probabilities (with the unweighted average
recall of those decisions), and over patches, then the head's fit-and-predict seconds and the model statistics
columns (``-``: a scikit-learn head records none; :func:`figures.tables.model_stat_cells`). The data is named
by its folder (``config/data_dir``). Nothing is drawn.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from figures.labels import is_unset
from figures.provenance import source_line
from figures.read import finished
from figures.tables import count, mean_std_cell, model_stat_cells, stats_caption, uar_column, write_table
from figures.transfer import HEAD_NAMES

# (column, metric) per split; the UAR is of the mean-probability decisions
METRICS = {"test": [("vote %", "test_accuracy_vote"), ("mean prob. %", "test_accuracy"),
                    ("mean prob. UAR %", uar_column("test")[0]), ("patches %", "test_accuracy_segment")],
           "valid": [("vote %", "best_valid_acc_vote"), ("mean prob. %", "best_valid_acc"),
                     ("mean prob. UAR %", uar_column("valid")[0]), ("patches %", "best_valid_acc_segment")]}


def table(df: pd.DataFrame, split: str) -> pd.DataFrame:
    """One row per (head, PCA setting) of ``df``: :data:`METRICS` of ``split``, ``mean ± std`` in % over the
    finished trials, the mean fit-and-predict seconds, ``n`` and the model statistics."""
    rows = []
    keys = [df["config/classifier"], df["config/pca_components"].map(lambda v: "-" if is_unset(v) else f"{int(v)}")]
    for (head, pca), part in df.groupby(keys, sort=False):
        done = finished(part)
        rows.append({"head": HEAD_NAMES.get(head, head), "PCA (whitened)": pca,
                     **{name: mean_std_cell(done, col) for name, col in METRICS[split]},
                     "fit s": f"{done['fit_seconds'].mean():.1f}", "n finished/total": count(part),
                     **model_stat_cells(part)})
    order = list(HEAD_NAMES.values())
    rows.sort(key=lambda r: (order.index(r["head"]) if r["head"] in order else len(order), r["PCA (whitened)"] != "-",
                             r["PCA (whitened)"]))
    return pd.DataFrame(rows)


def produce(load, split: str, out_dir: Path, table_dir: Path) -> None:
    loaded = load("embedding_heads")
    if loaded is None:
        return
    df = loaded[0]
    where = ", ".join(sorted({str(Path(str(d)).name) for d in df["config/data_dir"]}))
    write_table(table(df, split), table_dir, f"{split}_embedding_heads",
                f"embedding_heads, precomputed embeddings in {where}: {split} accuracy of each scikit-learn head at the "
                "recipe's defaults, fitted on every training patch; vote: one majority vote of the patches per clip "
                "(the recipe's), mean prob.: the argmax of the patches' mean class probabilities (UAR: their "
                "unweighted average recall), patches: per patch." + stats_caption(), source_line(df))

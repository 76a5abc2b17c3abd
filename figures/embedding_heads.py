"""embedding_heads experiment: every scikit-learn head on precomputed embeddings, scored as the recipe scores.

``tables/<split>_embedding_heads``: one row per head and PCA setting: the accuracy over clips by majority vote
of the patches (the recipe's), by the mean of the patches' class probabilities, and over patches, then the
head's fit-and-predict seconds. The data is named by its folder (``config/data_dir``). Nothing is drawn.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from figures.labels import is_unset
from figures.provenance import source_line
from figures.read import finished
from figures.tables import count, mean_std
from figures.tables import write_table
from figures.transfer import HEAD_NAMES

ACCURACIES = {"test": [("vote %", "test_accuracy_vote"), ("mean prob. %", "test_accuracy"),
                       ("patches %", "test_accuracy_segment")],
              "valid": [("vote %", "best_valid_acc_vote"), ("mean prob. %", "best_valid_acc"),
                        ("patches %", "best_valid_acc_segment")]}


def table(df: pd.DataFrame, split: str) -> pd.DataFrame:
    rows = []
    keys = [df["config/classifier"], df["config/pca_components"].map(lambda v: "-" if is_unset(v) else f"{int(v)}")]
    for (head, pca), part in df.groupby(keys, sort=False):
        done = finished(part)
        rows.append({"head": HEAD_NAMES.get(head, head), "PCA (whitened)": pca,
                     **{name: mean_std(done[col]) for name, col in ACCURACIES[split]},
                     "fit s": f"{done['fit_seconds'].mean():.1f}", "n finished/total": count(part)})
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
                "(the recipe's), mean prob.: the argmax of the patches' mean class probabilities, patches: per patch.",
                source_line(df))

"""transfer experiment: test accuracy against training examples per class, per method, with the compute each took.

``figures/<split>_transfer``: accuracy (%) against examples per class (1, 2, 5, 10, 20, all), one line per
method, the mean over seeds with its 95 % t-interval. ``tables/<split>_transfer``: the same numbers, one row
per method and one column per size, each followed by the unweighted average recall (UAR) at that size the same
way, then the compute: seconds per trial (Tune's ``time_total_s``; for an embedding, the head's fit and
predictions) and, for the embedding methods, what building the shared embedding cache took once
(``embed_seconds``), then the model statistics (:func:`figures.tables.model_stat_cells`; ``-`` for a
scikit-learn head, which records none). Methods are named by their embedding and head (transfer trials) or
by the front-end's label (neural trials).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from figures.labels import data_caption, is_unset, with_frontends
from figures.plotting import save
from figures.provenance import source_line
from figures.read import finished
from figures.tables import STAT_COLUMNS, model_stat_cells, stats_caption, uar_column, write_table

HEAD_NAMES = {"svm_linear": "linear SVM", "svm_rbf": "RBF SVM", "logreg": "logistic regression",
              "knn": "k-NN (cosine)", "mlp": "MLP"}


def method_label(row: pd.Series) -> str:
    """``"musicnn MSD_musicnn/max_pool + RBF SVM"``, ``"MFCC + RBF SVM"``, or the neural trial's front-end label."""
    head = row.get("config/classifier")
    if is_unset(head):
        return row["frontend"] + " (from scratch)"
    embedding = row.get("config/embedding")
    name = {"mfcc": "MFCC stats", "logmel": "log-mel stats", "precomputed": "precomputed"}.get(embedding, embedding)
    if embedding in ("musicnn", "torch"):
        model = row.get("config/embedding_model")
        name += f" {Path(str(model)).name}/{row.get('config/embedding_layer')}"
    return f"{name} + {HEAD_NAMES.get(head, head)}"


def size_label(value) -> str:
    return "all" if is_unset(value) else f"{int(value)}"


def interval(values: pd.Series) -> tuple[float, float, int]:
    """``(mean, 95 % t-interval half-width, n)`` in % (half-width NaN for one value)."""
    v = values.dropna().to_numpy() * 100
    if len(v) == 0:
        return np.nan, np.nan, 0
    if len(v) == 1:
        return float(v[0]), np.nan, 1
    return float(v.mean()), float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))), len(v)


def labelled(df: pd.DataFrame) -> pd.DataFrame:
    """The finished trials of ``df`` with ``method`` (:func:`method_label`) and ``size`` (:func:`size_label`)."""
    done = finished(df)
    sizes = done["config/train_per_class"] if "config/train_per_class" in done else pd.Series(None, index=done.index)
    return done.assign(method=done.apply(method_label, axis=1), size=sizes.map(size_label))


def curves(df: pd.DataFrame, acc_col: str, uar_col: str) -> pd.DataFrame:
    """One row per (method, size) of the finished trials: ``mean``, ``half`` (95 % half-width), ``n`` of
    ``acc_col``, the same of ``uar_col`` (the unweighted average recall) as ``uar_mean``, ``uar_half``, ``uar_n``
    (``uar_n`` 0 where the results do not hold it), and the mean ``seconds`` per trial and ``embed_seconds``."""
    rows = []
    for (method, size), part in labelled(df).groupby(["method", "size"], sort=False):
        mean, half, n = interval(part[acc_col])
        uar_mean, uar_half, uar_n = interval(part[uar_col] if uar_col in part else pd.Series(dtype=float))
        rows.append({"method": method, "size": size, "mean": mean, "half": half, "n": n, "uar_mean": uar_mean,
                     "uar_half": uar_half, "uar_n": uar_n,
                     "seconds": part["time_total_s"].mean() if "time_total_s" in part else np.nan,
                     "embed_seconds": part["embed_seconds"].max() if "embed_seconds" in part else np.nan})
    return pd.DataFrame(rows, columns=["method", "size", "mean", "half", "n", "uar_mean", "uar_half", "uar_n",
                                       "seconds", "embed_seconds"])


def ordered_sizes(sizes) -> list[str]:
    return sorted(set(sizes), key=lambda s: (s == "all", int(s) if s != "all" else 0))


def figure(curve: pd.DataFrame, acc_label: str, title: str):
    """Accuracy against examples per class (evenly spaced ticks), one line with 95 % error bars per method."""
    sizes = ordered_sizes(curve["size"])
    x = {s: k for k, s in enumerate(sizes)}
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for k, (method, part) in enumerate(curve.groupby("method", sort=False)):
        part = part.sort_values("size", key=lambda s: s.map(x))
        ax.errorbar(part["size"].map(x), part["mean"], yerr=part["half"].fillna(0), marker="os^vDP"[k % 6],
                    capsize=3, label=method, linestyle="--" if "scratch" in method else "-")
    ax.set_xticks(range(len(sizes)), sizes)
    ax.set_xlabel("training examples per class")
    ax.set_ylabel(acc_label)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def interval_cell(mean: float, half: float, n: int) -> str:
    """``"mean ± half-width (n)"`` (no ``±`` for one value); ``-`` for none."""
    if n == 0:
        return "-"
    spread = "" if np.isnan(half) else f" ± {half:.1f}"
    return f"{mean:.1f}{spread} ({n})"


def table(curve: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """One row per method of ``curve`` (:func:`curves`): ``mean ± half-width (n)`` per size, each followed by
    the UAR at that size (column ``UAR <size>``) the same way, then the compute columns and the model
    statistics of the method's finished trials in ``df`` (:func:`figures.tables.model_stat_cells`)."""
    sizes = ordered_sizes(curve["size"])
    trials = labelled(df)
    rows = []
    for method, part in curve.groupby("method", sort=False):
        by_size = part.set_index("size")
        row = {"method": method}
        for s in sizes:
            r = by_size.loc[s] if s in by_size.index else None
            row[s] = "-" if r is None else interval_cell(r["mean"], r["half"], r["n"])
            row[f"UAR {s}"] = "-" if r is None else interval_cell(r["uar_mean"], r["uar_half"], r["uar_n"])
        row["s/trial (mean)"] = f"{part['seconds'].mean():.1f}"
        embed = part["embed_seconds"].max()
        row["embedding, once (s)"] = "-" if np.isnan(embed) else f"{embed:.1f}"
        rows.append({**row, **model_stat_cells(trials[trials["method"] == method])})
    return pd.DataFrame(rows, columns=["method", *[c for s in sizes for c in (s, f"UAR {s}")], "s/trial (mean)",
                                       "embedding, once (s)", *STAT_COLUMNS])


def produce(load, split: str, out_dir: Path, table_dir: Path) -> None:
    loaded = load("transfer")
    if loaded is None:
        return
    df = with_frontends(loaded[0])
    acc_col, acc_label = ("test_accuracy", "test accuracy (%)") if split == "test" else ("best_valid_acc",
                                                                                          "valid accuracy (%)")
    curve = curves(df, acc_col, uar_column(split)[0])
    data = data_caption(df, "audio_mnist", "FSDD (protocol dmel)")
    save(figure(curve, acc_label, f"{data}: {split} accuracy against training examples per class"), out_dir,
         f"{split}_transfer")
    write_table(table(curve, df), table_dir, f"{split}_transfer",
                f"transfer, {data}: {split} accuracy (%) against training examples per class, mean ± 95 % t-interval "
                "half-width over seeds (n); UAR <size>: the unweighted average recall (%) the same way; an "
                "embedding's accuracy aggregates its patches' class probabilities per clip. s/trial: Tune's "
                "time_total_s (an embedding's: the head's fit and predictions); embedding, once: building the shared "
                "embedding cache." + stats_caption("means over the method's finished trials; a scikit-learn head "
                                                   "records none"), source_line(df))

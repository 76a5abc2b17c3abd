"""transfer experiment: test accuracy against training examples per class, per method, with the compute each took.

``figures/<split>_transfer``: accuracy (%) against examples per class (1, 2, 5, 10, 20, all), one line per
method, the mean over seeds with its 95 % t-interval. ``tables/<split>_transfer``: the same numbers, one row
per method and one column per size, then the compute: seconds per trial (Tune's ``time_total_s``; for an
embedding, the head's fit and predictions) and, for the embedding methods, what building the shared embedding
cache took once (``embed_seconds``). Methods are named by their embedding and head (transfer trials) or by
the front-end's label (neural trials).
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
from figures.tables import write_table

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


def curves(df: pd.DataFrame, acc_col: str) -> pd.DataFrame:
    """One row per (method, size) of the finished trials: ``mean``, ``half`` (95 % half-width), ``n``, and the
    mean ``seconds`` per trial and ``embed_seconds``."""
    done = finished(df)
    sizes = done["config/train_per_class"] if "config/train_per_class" in done else pd.Series(None, index=done.index)
    done = done.assign(method=done.apply(method_label, axis=1), size=sizes.map(size_label))
    rows = []
    for (method, size), part in done.groupby(["method", "size"], sort=False):
        mean, half, n = interval(part[acc_col])
        rows.append({"method": method, "size": size, "mean": mean, "half": half, "n": n,
                     "seconds": part["time_total_s"].mean() if "time_total_s" in part else np.nan,
                     "embed_seconds": part["embed_seconds"].max() if "embed_seconds" in part else np.nan})
    return pd.DataFrame(rows, columns=["method", "size", "mean", "half", "n", "seconds", "embed_seconds"])


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


def table(curve: pd.DataFrame) -> pd.DataFrame:
    """One row per method: ``mean ± half-width (n)`` per size, then the compute columns."""
    sizes = ordered_sizes(curve["size"])
    rows = []
    for method, part in curve.groupby("method", sort=False):
        by_size = part.set_index("size")
        row = {"method": method}
        for s in sizes:
            if s not in by_size.index:
                row[s] = "-"
                continue
            r = by_size.loc[s]
            spread = "" if np.isnan(r["half"]) else f" ± {r['half']:.1f}"
            row[s] = f"{r['mean']:.1f}{spread} ({r['n']})"
        row["s/trial (mean)"] = f"{part['seconds'].mean():.1f}"
        embed = part["embed_seconds"].max()
        row["embedding, once (s)"] = "-" if np.isnan(embed) else f"{embed:.1f}"
        rows.append(row)
    return pd.DataFrame(rows, columns=["method", *sizes, "s/trial (mean)", "embedding, once (s)"])


def produce(load, split: str, out_dir: Path, table_dir: Path) -> None:
    loaded = load("transfer")
    if loaded is None:
        return
    df = with_frontends(loaded[0])
    acc_col, acc_label = ("test_accuracy", "test accuracy (%)") if split == "test" else ("best_valid_acc",
                                                                                          "valid accuracy (%)")
    curve = curves(df, acc_col)
    data = data_caption(df, "audio_mnist", "FSDD (protocol dmel)")
    save(figure(curve, acc_label, f"{data}: {split} accuracy against training examples per class"), out_dir,
         f"{split}_transfer")
    write_table(table(curve), table_dir, f"{split}_transfer",
                f"transfer, {data}: {split} accuracy (%) against training examples per class, mean ± 95 % t-interval "
                "half-width over seeds (n); an embedding's accuracy aggregates its patches' class probabilities per "
                "clip. s/trial: Tune's time_total_s (an embedding's: the head's fit and predictions); embedding, "
                "once: building the shared embedding cache.", source_line(df))

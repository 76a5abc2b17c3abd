"""Classification metrics of one split: accuracy, macro-F1, unweighted average recall, per-class recall,
confusion matrix.

Everything is read off the confusion matrix (numpy): scikit-learn's ``metrics`` computes the same
numbers (the tests check them against it) but is slow to import, and every trial process would pay it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def confusion_counts(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` int64 counts, true classes as rows and predicted classes as columns."""
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    return np.bincount(labels * n_classes + predictions, minlength=n_classes**2).reshape(n_classes, n_classes)


def unweighted_average_recall(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> float:
    """UAR (balanced accuracy): the mean of the per-class recalls over the classes present in ``labels``
    (scikit-learn's ``balanced_accuracy_score``); NaN for no labels."""
    counts = confusion_counts(labels, predictions, n_classes)
    true = counts.sum(1)
    present = true > 0
    return float((np.diag(counts)[present] / true[present]).mean()) if present.any() else float("nan")


def class_metrics(labels: np.ndarray, predictions: np.ndarray, class_names: list[str]) -> dict:
    """``{"macro_f1": float, "uar": float, "recall/<class>": float, ...}`` for integer ``labels``/``predictions``.

    Classes absent from ``labels`` get recall NaN (not 0) and are left out of the macro-F1 and of the
    unweighted average recall (``uar``, the mean recall of the present classes: balanced accuracy); a class
    present but never predicted has F1 0 (scikit-learn's ``zero_division=0``) and recall 0.
    """
    counts = confusion_counts(labels, predictions, len(class_names))
    hits, true, predicted = np.diag(counts), counts.sum(1), counts.sum(0)
    present = true > 0
    f1 = 2 * hits[present] / (true[present] + predicted[present])  # true > 0: never 0 / 0
    recall = hits[present] / true[present]
    out = {"macro_f1": float(f1.mean()) if f1.size else 0.0,
           "uar": float(recall.mean()) if recall.size else float("nan")}
    for k, name in enumerate(class_names):
        out[f"recall/{name}"] = float(hits[k] / true[k]) if present[k] else float("nan")
    return out


def confusion_table(labels: np.ndarray, predictions: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    """Counts with true classes as rows and predicted classes as columns, both named."""
    counts = confusion_counts(labels, predictions, len(class_names))
    return pd.DataFrame(counts, index=pd.Index(class_names, name="true"), columns=class_names)

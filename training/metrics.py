"""Classification metrics of one split: accuracy, macro-F1, per-class recall, confusion matrix."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score, recall_score


def class_metrics(labels: np.ndarray, predictions: np.ndarray, class_names: list[str]) -> dict:
    """``{"macro_f1": float, "recall/<class>": float, ...}`` for integer ``labels``/``predictions``.

    Classes absent from ``labels`` get recall NaN (not 0) and are left out of the macro-F1.
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    present = np.unique(labels)
    out = {"macro_f1": float(f1_score(labels, predictions, labels=present, average="macro", zero_division=0))}
    recall = recall_score(labels, predictions, labels=np.arange(len(class_names)), average=None, zero_division=0)
    for k, name in enumerate(class_names):
        out[f"recall/{name}"] = float(recall[k]) if k in present else float("nan")
    return out


def confusion_table(labels: np.ndarray, predictions: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    """Counts with true classes as rows and predicted classes as columns, both named."""
    cm = confusion_matrix(labels, predictions, labels=np.arange(len(class_names)))
    return pd.DataFrame(cm, index=pd.Index(class_names, name="true"), columns=class_names)

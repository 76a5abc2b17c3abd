"""One transfer trial: a scikit-learn head fitted on embedding rows, scored like a neural trial.

The head is fitted on the train clips' rows (one per patch), validated and tested per clip: ``*_accuracy``
by the mean of the rows' class probabilities, ``*_accuracy_vote`` by the recipe's majority vote of the rows'
predictions, ``*_accuracy_segment`` row by row. ``train_per_class`` fits on a seeded stratified subset of
the train clips (the same clips a neural trial of that seed and size trains on). The trial reports once,
with the metrics (macro-F1, recalls and the confusion matrix from the mean-probability decisions, as a
neural trial's from its mean logits) and checkpoint files a neural trial's last report has (``predictions.csv``,
``confusion_matrix.csv``, ``splits.json``, ``classes.json``, ``config.json``), plus the fitted pipeline
(``head.pkl``) and the embedding cost (``embed_seconds``: what building the shared embedding cache took,
paid once per corpus and setting; ``fit_seconds``: this head's fit and predictions).
"""
from __future__ import annotations

import json
import math
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from corpora.splits import per_class_subset
from training.metrics import class_metrics, confusion_table, unweighted_average_recall
from training.provenance import code_version
from transfer.cache import Rows, embed_splits
from transfer.heads import build_head, class_scores, clip_decisions


def load_rows(cfg: dict) -> tuple[dict[str, Rows], list[str], float, dict]:
    """``(rows per split, class names, embedding seconds, counts)``: the precomputed corpus's files, or the
    corpus's clips embedded through the cache, with ``train_per_class`` applied to the train clips."""
    if cfg["dataset_name"] == "embeddings":
        from corpora.embeddings import load_rows as read_files

        rows, names = read_files(cfg)
        seconds, info = 0.0, {}
    else:
        from corpora.registry import get_corpus

        splits = get_corpus(cfg["dataset_name"]).load_splits(cfg)
        rows, seconds = embed_splits(splits, cfg)
        names, info = list(splits.class_names), dict(splits.info)
    if cfg["train_per_class"] is not None:
        rows["train"] = rows["train"].subset(per_class_subset(rows["train"].y, int(cfg["train_per_class"]),
                                                              int(cfg["seed"])))
        info["train_subset"] = len(rows["train"].y)
    return rows, names, seconds, info


def score(pipeline, rows: Rows, n_classes: int) -> dict:
    """Per-clip decisions and the split's metrics (NaN for an empty split)."""
    if len(rows.y) == 0:
        return {"loss": math.nan, "accuracy": math.nan, "accuracy_vote": math.nan, "accuracy_segment": math.nan}
    row_pred = pipeline.predict(rows.x).astype(np.int64)
    vote, mean_pred, mean = clip_decisions(row_pred, class_scores(pipeline, rows.x, n_classes), rows.clip,
                                           len(rows.y))
    picked = np.clip(mean[np.arange(len(rows.y)), rows.y], 1e-7, 1.0)
    return {"loss": float(-np.log(picked).mean()), "accuracy": float(np.mean(mean_pred == rows.y)),
            "accuracy_vote": float(np.mean(vote == rows.y)),
            "accuracy_segment": float(np.mean(row_pred == rows.y[rows.clip])),
            "predictions": mean_pred, "votes": vote}


def run_transfer_trial(cfg: dict, report) -> dict:
    """Fit, validate and test ``cfg``'s head (a resolved config with ``classifier`` set); report once."""
    from training.trial import node_address

    rows, class_names, embed_seconds, info = load_rows(cfg)
    train = rows["train"]
    start = time.perf_counter()
    pipeline = build_head(cfg, len(train.x), train.x.shape[1])
    pipeline.fit(train.x, train.y[train.clip])
    n_classes = len(class_names)
    fitted = score(pipeline, train, n_classes)
    valid, test = score(pipeline, rows["valid"], n_classes), score(pipeline, rows["test"], n_classes)
    fit_seconds = time.perf_counter() - start
    per_class = class_metrics(rows["test"].y, test["predictions"], class_names)  # mean-probability decisions
    valid_uar = (unweighted_average_recall(rows["valid"].y, valid["predictions"], n_classes)
                 if "predictions" in valid else math.nan)
    metrics = {"epoch": 0, "lr": math.nan, "loss": fitted["loss"], "valid_loss": valid["loss"],
               "valid_acc": valid["accuracy"], "valid_acc_vote": valid["accuracy_vote"],
               "valid_acc_segment": valid["accuracy_segment"], "best_valid_loss": valid["loss"],
               "best_valid_acc": valid["accuracy"], "best_valid_acc_vote": valid["accuracy_vote"],
               "best_valid_acc_segment": valid["accuracy_segment"], "valid_uar": valid_uar,
               "best_valid_uar": valid_uar, "best_epoch": 0, "code_version": code_version(),
               "test_loss": test["loss"], "test_accuracy": test["accuracy"], "test_accuracy_vote": test["accuracy_vote"],
               "test_accuracy_segment": test["accuracy_segment"], **{f"test_{k}": v for k, v in per_class.items()},
               "embed_seconds": embed_seconds, "fit_seconds": fit_seconds, "n_train_clips": len(train.y),
               "n_train_rows": len(train.x), "embedding_dims": int(train.x.shape[1]), "device": "cpu", "node_ip":
               node_address(), "done": True, **{f"n_{k}": v for k, v in info.items()}}
    with tempfile.TemporaryDirectory() as ckpt:
        write_artifacts(Path(ckpt), cfg, pipeline, rows, test, class_names)
        report(metrics, ckpt)
    return metrics


def write_artifacts(ckpt: Path, cfg: dict, pipeline, rows: dict[str, Rows], test: dict, class_names: list[str]) -> None:
    """The files a neural trial's final checkpoint has, with the fitted pipeline in place of the weights."""
    (ckpt / "config.json").write_text(json.dumps(cfg, indent=1, default=str))
    with open(ckpt / "head.pkl", "wb") as f:
        pickle.dump(pipeline, f)
    labels = rows["test"].y
    pd.DataFrame({"id": rows["test"].ids, "label": labels, "prediction": test["predictions"],
                  "vote": test["votes"]}).to_csv(ckpt / "predictions.csv", index=False)
    confusion_table(labels, test["predictions"], class_names).to_csv(ckpt / "confusion_matrix.csv")
    (ckpt / "splits.json").write_text(json.dumps({split: r.ids for split, r in rows.items()}))
    (ckpt / "classes.json").write_text(json.dumps({"class_names": class_names, "sample_rate": cfg["sample_rate"]}))

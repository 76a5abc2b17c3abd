"""The scikit-learn heads a transfer trial fits on embedding rows (one row per patch).

Defaults are the transfer-learning recipe's (jordipons/sklearn-audio-transfer-learning,
``define_classification_model``): ``svm_linear`` ``LinearSVC(C=1)``, ``svm_rbf`` ``SVC(C=1, gamma="scale")``,
``knn`` one neighbour by cosine distance, ``mlp`` 20 hidden units trained by SGD at 0.001 for 600 epochs;
``logreg`` is L2 logistic regression. ``pca_components`` puts the recipe's PCA with whitening in front
(``None``: none, as the recipe with ``pca=False``); ``standardize_rows`` a ``StandardScaler`` (the recipe
has none, so off by default).
"""
from __future__ import annotations

import numpy as np

HEADS = ("svm_linear", "svm_rbf", "logreg", "knn", "mlp")


def build_head(cfg: dict, n_rows: int, n_dims: int):
    """An unfitted scikit-learn ``Pipeline`` for ``cfg["classifier"]``, seeded by ``cfg["seed"]``.

    ``n_rows``/``n_dims``: the train rows' shape. The PCA size and the neighbour count are capped by what the
    rows allow (a 1-example-per-class subset has fewer rows than the recipe's 128 components).
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    name, seed = cfg["classifier"], int(cfg["seed"])
    if name == "svm_linear":
        head = LinearSVC(C=cfg["C"], random_state=seed, max_iter=10000)
    elif name == "svm_rbf":
        head = SVC(C=cfg["C"], kernel="rbf", gamma=cfg["gamma"], random_state=seed)
    elif name == "logreg":
        head = LogisticRegression(C=cfg["C"], max_iter=5000, random_state=seed)
    elif name == "knn":
        head = KNeighborsClassifier(n_neighbors=min(int(cfg["n_neighbors"]), n_rows), metric="cosine")
    elif name == "mlp":
        head = MLPClassifier(hidden_layer_sizes=(int(cfg["mlp_hidden"]),), solver="sgd", learning_rate="constant",
                             learning_rate_init=0.001, max_iter=600, random_state=seed)
    else:
        raise ValueError(f"unknown classifier {name!r}; choose one of {HEADS}")
    steps = [StandardScaler()] if cfg["standardize_rows"] else []
    if cfg["pca_components"] is not None:
        steps.append(PCA(n_components=min(int(cfg["pca_components"]), n_rows, n_dims), whiten=True,
                         random_state=seed))
    return make_pipeline(*steps, head)


def class_scores(pipeline, rows: np.ndarray, n_classes: int) -> np.ndarray:
    """``(len(rows), n_classes)`` probabilities of each row: ``predict_proba`` where the head has one, else
    the softmax of its decision function (the SVMs; no Platt scaling, whose internal cross-validation
    cannot run on a few examples per class). Classes the head never saw in training get 0."""
    head = pipeline[-1]
    if hasattr(head, "predict_proba"):
        seen = pipeline.predict_proba(rows)
    else:
        margin = pipeline.decision_function(rows)
        if margin.ndim == 1:  # two classes: one margin, positive for classes_[1]
            margin = np.stack([-margin, margin], axis=1)
        margin = margin - margin.max(axis=1, keepdims=True)
        seen = np.exp(margin) / np.exp(margin).sum(axis=1, keepdims=True)
    out = np.zeros((len(rows), n_classes))
    out[:, head.classes_.astype(np.int64)] = seen
    return out


def clip_decisions(row_pred: np.ndarray, row_scores: np.ndarray, clip: np.ndarray, n_clips: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-clip decisions from per-row ones.

    Args:
        row_pred: ``(rows,)`` the head's predicted class of each row.
        row_scores: ``(rows, n_classes)`` class probabilities of each row (:func:`class_scores`).
        clip: ``(rows,)`` the clip (0..n_clips-1) each row belongs to.
    Returns:
        ``(vote, mean_pred, mean_scores)``: the recipe's majority vote of the rows' predictions (ties to the
        lowest class, as its ``np.argmax(np.bincount(...))``), the argmax of the mean probabilities, and
        those ``(n_clips, n_classes)`` means.
    """
    n_classes = row_scores.shape[1]
    votes = np.zeros((n_clips, n_classes), dtype=np.int64)
    np.add.at(votes, (clip, row_pred.astype(np.int64)), 1)
    sums = np.zeros((n_clips, n_classes))
    np.add.at(sums, clip, row_scores)
    counts = np.bincount(clip, minlength=n_clips)[:, None]
    mean = sums / np.maximum(counts, 1)
    return votes.argmax(axis=1), mean.argmax(axis=1), mean

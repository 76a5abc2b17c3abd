"""Precomputed embeddings (``dataset_name="embeddings"``): rows a user already has, read by the scikit-learn
heads of :mod:`transfer` (``classifier`` set; no waveforms, so no neural trial reads this corpus).

Layout under ``data_dir``: the transfer-learning recipe's (jordipons/sklearn-audio-transfer-learning) ``.npz``
files, each with ``X`` (rows x dims, one row per audio patch), ``Y`` (each row's integer class) and ``IDS``
(the clip each row belongs to)::

    training_data_<anything>.npz    or train.npz     the train split
    evaluation_data_<anything>.npz  or test.npz      the test split
    validation_data_<anything>.npz  or valid.npz     optional: the validation split

Without a validation file, a seeded stratified ``valid_share`` of the training clips validates (seeded by
``split_seed``); ``valid_share=0`` fits on every training clip and leaves validation empty, the recipe's own
procedure. Class names: the files' ``CLASSES`` when there, else the first folder of ``IDS`` when it names one
class only (GTZAN's ``blues/blues.00029.au``), else the class numbers.
"""
from __future__ import annotations

import numpy as np

from corpora.registry import Corpus, register_corpus
from corpora.splits import split_seed
from transfer.cache import Rows

PATTERNS = {"train": ("train.npz", "training_data_*.npz"), "valid": ("valid.npz", "validation_data_*.npz"),
            "test": ("test.npz", "evaluation_data_*.npz")}
LAYOUT = "train.npz/test.npz (or the recipe's training_data_*.npz/evaluation_data_*.npz) with X, Y and IDS"


def find_file(data_dir, split: str):
    """The one file of ``split`` in ``data_dir`` (``None`` when absent; two candidates are refused)."""
    from pathlib import Path

    found = sorted({p for pattern in PATTERNS[split] for p in Path(data_dir).glob(pattern)})
    if len(found) > 1:
        raise ValueError(f"{data_dir}: {len(found)} {split} files ({', '.join(p.name for p in found)}); "
                         "keep one per split in the folder")
    return found[0] if found else None


def read_rows(path) -> tuple[Rows, dict[int, str]]:
    """One file's :class:`transfer.cache.Rows` (clips in order of first appearance) and the class names it
    gives (``CLASSES``, or its ``IDS`` folders when each names one class; else ``{}``)."""
    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in ("X", "Y", "IDS") if k not in f.files]
        if missing:
            raise ValueError(f"{path}: no {', '.join(missing)} (has {', '.join(f.files)}); expected {LAYOUT}")
        x, y, ids = np.asarray(f["X"], dtype=np.float32), np.asarray(f["Y"]).astype(np.int64), f["IDS"].astype(str)
        classes = f["CLASSES"].astype(str).tolist() if "CLASSES" in f.files else None
    if not (len(x) == len(y) == len(ids)) or x.ndim != 2:
        raise ValueError(f"{path}: X {x.shape}, Y {y.shape} and IDS {ids.shape} must be (rows, dims), (rows,), (rows,)")
    names, clip = np.unique(ids, return_index=False, return_inverse=True)
    first = np.array([np.flatnonzero(clip == k)[0] for k in range(len(names))])
    order = np.argsort(first)  # clips in order of first appearance
    renumber = np.empty_like(order)
    renumber[order] = np.arange(len(order))
    clip_labels = y[first[order]]
    if np.any(y != clip_labels[renumber[clip]]):
        raise ValueError(f"{path}: rows of one clip (IDS) carry different labels (Y)")
    if classes is not None:
        given = dict(enumerate(classes))
    else:
        folders = {}
        for label, name in zip(y, ids):
            folders.setdefault(int(label), set()).add(name.split("/")[0] if "/" in name else None)
        given = {k: v.pop() for k, v in folders.items() if len(v) == 1 and None not in v}
    return Rows(x, renumber[clip], clip_labels, names[order].tolist()), given


def stratified_holdout(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, held out)`` positions: ``round(share * n_c)`` seeded clips of every class ``c`` held out."""
    rng = np.random.default_rng([seed, 0xe3b])
    held = [rng.permutation(np.flatnonzero(labels == c))[:int(round(share * np.sum(labels == c)))]
            for c in np.unique(labels)]
    held = np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)
    return np.setdiff1d(np.arange(len(labels)), held), held


def load_rows(cfg: dict) -> tuple[dict[str, Rows], list[str]]:
    """``({"train"|"valid"|"test": Rows}, class names)`` of the files in ``cfg["data_dir"]``."""
    files = {split: find_file(cfg["data_dir"], split) for split in PATTERNS}
    for split in ("train", "test"):
        if files[split] is None:
            raise FileNotFoundError(f"{cfg['data_dir']}: no {split} file; expected {LAYOUT}")
    rows, names = {}, {}
    for split, path in files.items():
        if path is not None:
            rows[split], given = read_rows(path)
            names.update(given)
    if "valid" not in rows:
        kept, held = stratified_holdout(rows["train"].y, cfg["valid_share"], split_seed(cfg))
        rows["train"], rows["valid"] = rows["train"].subset(kept), rows["train"].subset(held)
    n_classes = 1 + max(int(r.y.max()) for r in rows.values() if len(r.y))
    return rows, [names.get(k, str(k)) for k in range(n_classes)]


def _no_waveforms(cfg: dict):
    raise ValueError("dataset_name='embeddings' holds embedding rows, not audio: only scikit-learn heads read it "
                     "(set classifier=svm_rbf, say; docs/transfer.md)")


def _problems(cfg: dict) -> list[str]:
    out = []
    if cfg["classifier"] is None:
        out.append("dataset_name='embeddings' holds embedding rows, not audio: set classifier (a scikit-learn head, "
                   "e.g. classifier=svm_rbf) to read it")
    if cfg["embedding"] != "precomputed":
        out.append(f"dataset_name='embeddings' reads the rows its files hold: set embedding=precomputed "
                   f"(not {cfg['embedding']!r})")
    if not 0 <= cfg["valid_share"] < 1:
        out.append(f"valid_share={cfg['valid_share']!r}: must be in [0, 1)")
    return out


register_corpus(Corpus(
    "embeddings", _no_waveforms, "precomputed embeddings: .npz files with X (rows x dims), Y and IDS per split "
    "(the transfer-learning recipe's layout), for scikit-learn heads",
    default_dir="data/embeddings", dir_env="EMBEDDINGS_DIR",
    download_hint=f"put your embeddings in a folder ({LAYOUT}) and pass --data_dir=<folder>",
    defaults={"valid_share": 0.15},  # without a validation file: the share of training clips held out to validate (0: none, the recipe's procedure)
    problems=_problems,
))

"""Your own labelled audio (``dataset_name="folder"``): WAV, FLAC, OGG or MP3 files at any sample rate
and channel count, in one of two layouts under ``data_dir``.

* **One sub-folder per class**::

      <data_dir>/<class>/<file>           the class is the sub-folder's name
      <data_dir>/<class>/<any>/<file>     deeper folders belong to the class above them

  Files ending in one of ``config["folder_extensions"]`` (any case) are read. Audio files directly in
  ``data_dir`` have no class: they are left out with a warning and counted (``info["unlabelled"]``);
  other files are left out with a warning naming their endings (``info["ignored"]``). Names starting
  with ``.`` (``.DS_Store``, ``.git/``) are passed over unseen.
* **A manifest**: ``<data_dir>/manifest.csv``, or the CSV ``config["manifest"]`` (a relative path is
  under ``data_dir``), which wins over the sub-folders. Columns ``path,label`` and optionally ``split``
  (train, valid, test; ``val`` and ``validation`` name valid too), ``fold`` (an integer) and ``group``
  (a speaker, recording or take: files that must stay on one side of a split). A ``path`` is relative to
  the manifest's folder, or absolute. Listed files that are absent are warned about and counted
  (``info["missing"]``); only the listed files are read, whatever their ending.

Labels: the class names sorted (numerically when every name is an integer, so ``"2"`` before ``"10"``;
else alphabetically) are label ids 0, 1, ... Every file is decoded once into the shared cache
(:mod:`corpora.audio_cache`): channels averaged, resampled to ``sample_rate`` Hz, cropped or
zero-padded (``clip_padding``) to ``clip_seconds``; a short file is padded, never dropped. Files that
cannot be decoded, or hold no audio, are skipped with one warning and counted (``info["unreadable"]``).

Split protocols (``config["protocol"]``; ``None`` is ``split`` for a manifest with a split column, else
``stratified``):

* ``split``: the manifest's ``split`` column, as written.
* ``fold``: k-fold on the manifest's ``fold`` column: ``config["fold"]`` is the test fold; of the
  other folds, a seeded share ``valid / (train + valid)`` of ``folder_split`` (1/8 by default)
  validates, stratified by label and in whole groups; the rest trains.
* ``stratified``: a seeded split (``split_seed``) in the shares ``folder_split`` (train, valid, test;
  default 0.7/0.1/0.2), stratified by label and in whole groups (each file is its own group without a
  ``group`` column). Each held-out share is rounded to ``m/k`` (``k`` at most 10 and the group count
  of the largest class; ``m`` at least 1) and made of ``m`` of the ``k`` folds of scikit-learn's ``StratifiedGroupKFold``.

A class with fewer than 3 groups (files, without a group column) cannot be in train, valid and test of
a stratified split: an error names such classes with their counts. Under every protocol a class
without a training example is an error; one missing only from valid or test is warned about (it is
trained on; its metrics there are absent). Groups that a manifest's own ``split`` or ``fold`` column
puts on two sides are warned about.

``info``: ``files`` (found or listed), ``train``/``valid``/``test`` (examples per split), ``unreadable``,
``missing``, ``unlabelled``, ``ignored``. ``ids_*``: file paths relative to ``data_dir`` (absolute for
a manifest's files outside it).
"""
from __future__ import annotations

import os
import warnings
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedGroupKFold

from corpora.audio_cache import cached_audio
from corpora.registry import Corpus, register_corpus
from corpora.splits import Rows, Splits, split_seed

PROTOCOLS = ("split", "fold", "stratified")
SPLIT_NAMES = ("train", "valid", "test")
SPLIT_VALUES = {"train": "train", "valid": "valid", "val": "valid", "validation": "valid", "test": "test"}
MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("path", "label", "split", "fold", "group")
MAX_FOLDS = 10  # a held-out share is m of at most this many StratifiedGroupKFold folds
MIN_GROUPS = 3  # per class, to be in train, valid and test of a stratified split
PROJECT = Path(__file__).resolve().parent.parent
LAYOUTS = ("one sub-folder per class (<data_dir>/<class>/<files>), or a manifest.csv with columns "
           "path,label[,split,fold,group]")


def listing(names, shown: int = 5) -> str:
    """``"a, b, c and 4 more"``: the first ``shown`` of ``names``."""
    names = list(names)
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(map(str, names[:shown])) + more


def sort_classes(labels) -> list[str]:
    """The distinct ``labels`` in label-id order: numerically when every one is an integer, else alphabetically."""
    names = sorted(set(labels))
    if all(name.lstrip("-").isdigit() for name in names):
        return sorted(names, key=int)
    return names


def find_class_folders(root: Path, extensions) -> tuple[pd.DataFrame, dict]:
    """The class-folder layout under ``root``: a table of ``path`` (absolute) and ``label`` (the
    sub-folder), in path order, and the counts of files left out (``unlabelled``, ``ignored``).
    ``extensions``: the endings read as audio (``"wav"`` or ``".wav"``, any case; one string or several)."""
    extensions = (extensions,) if isinstance(extensions, str) else extensions
    endings = {"." + str(e).lower().lstrip(".") for e in extensions}
    rows, unlabelled, ignored = [], [], Counter()
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file():
            if entry.suffix.lower() in endings:
                unlabelled.append(entry.name)
            else:
                ignored[entry.suffix.lower() or entry.name] += 1
            continue
        for path in sorted(entry.rglob("*")):
            if not path.is_file() or any(part.startswith(".") for part in path.relative_to(entry).parts):
                continue
            if path.suffix.lower() in endings:
                rows.append((str(path), entry.name))
            else:
                ignored[path.suffix.lower() or path.name] += 1
    if unlabelled:
        warnings.warn(f"folder: {len(unlabelled)} audio file(s) directly in {root} have no class folder: "
                      f"{listing(unlabelled)}; left out (info['unlabelled']). Move them into <class>/ folders")
    if ignored:
        kinds = listing(f"{ending}: {n}" for ending, n in ignored.most_common())
        warnings.warn(f"folder: {sum(ignored.values())} file(s) in {root} not ending in {', '.join(sorted(endings))} "
                      f"were ignored ({kinds}); folder_extensions lists the endings read as audio")
    table = pd.DataFrame(rows, columns=["path", "label"])
    return table, {"unlabelled": len(unlabelled), "ignored": sum(ignored.values())}


def _lines(mask: np.ndarray) -> str:
    """The CSV line numbers (the header is line 1) of the rows where ``mask`` holds."""
    return listing(np.flatnonzero(mask) + 2)


def read_manifest(csv: Path) -> pd.DataFrame:
    """The manifest ``csv`` as a table: ``path`` (absolute), ``label``, and where given ``split`` (train,
    valid or test), ``fold`` (int) and ``group``; raises ``ValueError`` naming the lines of bad cells."""
    if not csv.is_file():
        raise FileNotFoundError(f"no manifest at {csv} (config manifest): give a CSV with columns "
                                "path,label[,split,fold,group]")
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    table.columns = [c.strip().lower() for c in table.columns]
    absent = [c for c in ("path", "label") if c not in table.columns]
    if absent:
        raise ValueError(f"{csv} has no column(s) {absent} (it has {list(table.columns)}): a manifest has columns "
                         "path,label and optionally split, fold, group")
    table = table[[c for c in MANIFEST_COLUMNS if c in table.columns]].apply(lambda column: column.str.strip())
    for column in table.columns:
        if (blank := (table[column] == "").to_numpy()).any():
            raise ValueError(f"{csv}: empty {column} on line(s) {_lines(blank)}")
    table["path"] = [os.path.abspath(p if os.path.isabs(p) else csv.parent / p) for p in table["path"]]
    if (twice := table["path"].duplicated(keep=False).to_numpy()).any():
        raise ValueError(f"{csv}: the same file on line(s) {_lines(twice)}; list each file once")
    if "split" in table:
        split = table["split"].str.lower().map(SPLIT_VALUES)
        if (bad := split.isna().to_numpy()).any():
            raise ValueError(f"{csv}: split must be train, valid or test, not {listing(table['split'][bad].unique())} "
                             f"(line(s) {_lines(bad)})")
        table["split"] = split
    if "fold" in table:
        fold = pd.to_numeric(table["fold"], errors="coerce")
        if (bad := (fold.isna() | (fold != fold.round())).to_numpy()).any():
            raise ValueError(f"{csv}: fold must be an integer, not {listing(table['fold'][bad].unique())} "
                             f"(line(s) {_lines(bad)})")
        table["fold"] = fold.astype(np.int64)
    return table


def manifest_path(config: dict, root: Path) -> Path | None:
    """The manifest of ``config``: ``config["manifest"]`` (relative: under ``root``), else
    ``root/manifest.csv`` when it exists, else ``None`` (the class-folder layout)."""
    if config["manifest"]:
        return root / config["manifest"]
    return root / MANIFEST if (root / MANIFEST).is_file() else None


def split_shares(shares) -> tuple[float, float, float]:
    """``folder_split`` as (train, valid, test): three positive numbers summing to 1."""
    try:
        train, valid, test = (float(s) for s in shares)
    except (TypeError, ValueError) as err:
        raise ValueError(f"folder_split={shares!r}: must be three numbers (train, valid, test), e.g. (0.7, 0.1, 0.2)") from err
    if min(train, valid, test) <= 0 or abs(train + valid + test - 1) > 1e-6:
        raise ValueError(f"folder_split={shares!r}: train, valid and test shares must be positive and sum to 1")
    return train, valid, test


def held_out(labels: np.ndarray, groups: np.ndarray, share: float, seed: int) -> np.ndarray:
    """``(n,)`` bool: a seeded share of the ``n`` rows, stratified by ``labels`` and in whole ``groups``.

    ``share`` (in (0, 1)) is rounded to ``m/k`` with ``k`` at most ``MAX_FOLDS`` and the number of
    groups of the largest class (``StratifiedGroupKFold`` refuses more folds than that), and ``m`` at least
    1 (a small share of a small corpus still holds one group per class out); the rows are ``m`` of the ``k``
    folds of ``StratifiedGroupKFold`` shuffled by ``seed``. Fewer than two groups per class hold nothing out."""
    mask = np.zeros(len(labels), dtype=bool)
    pairs = np.unique(np.stack([labels.astype(str), groups.astype(str)]), axis=1)  # (2, distinct (class, group))
    per_class = np.unique(pairs[0], return_counts=True)[1]
    limit = min(MAX_FOLDS, int(per_class.max()) if len(per_class) else 0)
    if limit < 2:
        return mask
    fraction = min(max(Fraction(share).limit_denominator(limit), Fraction(1, limit)), Fraction(limit - 1, limit))
    folds = StratifiedGroupKFold(fraction.denominator, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)  # checked by check_classes
        for _, rows in list(folds.split(np.zeros(len(labels)), labels, groups))[:fraction.numerator]:
            mask[rows] = True
    return mask


def resolve_protocol(config: dict, table: pd.DataFrame) -> str:
    """``config["protocol"]``, or the default for ``table`` (``split`` with a split column, else
    ``stratified``); raises ``ValueError`` when the table lacks the column it needs or the test fold."""
    protocol = config["protocol"] or ("split" if "split" in table else "stratified")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown folder protocol {protocol!r}; choose one of {PROTOCOLS} (or None)")
    if protocol in ("split", "fold") and protocol not in table:
        raise ValueError(f"folder protocol {protocol!r} needs a manifest with a {protocol} column; "
                         "use protocol=stratified, or add the column")
    if protocol == "fold" and config["fold"] not in set(table["fold"].tolist()):
        raise ValueError(f"fold={config['fold']!r}: the manifest's folds are {sorted(set(table['fold'].tolist()))}")
    return protocol


def split_rows(table: pd.DataFrame, labels: np.ndarray, groups: np.ndarray, protocol: str, fold: int,
               shares: tuple[float, float, float], seed: int) -> list[np.ndarray]:
    """Sorted row indices of train/valid/test of ``table`` under ``protocol`` (see the module docstring);
    ``labels`` and ``groups`` are ``(len(table),)``."""
    if protocol == "split":
        return [np.flatnonzero(table["split"].to_numpy() == name) for name in SPLIT_NAMES]
    train, valid, test = shares
    in_test = table["fold"].to_numpy() == fold if protocol == "fold" else held_out(labels, groups, test, seed)
    rest = np.flatnonzero(~in_test)
    in_valid = held_out(labels[rest], groups[rest], valid / (train + valid), seed)
    return [rest[~in_valid], rest[in_valid], np.flatnonzero(in_test)]


def check_classes(labels: np.ndarray, groups: np.ndarray, class_names: list[str], grouped: bool) -> None:
    """Raise ``ValueError`` naming the classes with fewer than ``MIN_GROUPS`` groups (the stratified split)."""
    few = []
    for c, name in enumerate(class_names):
        rows = labels == c
        n_groups = len(np.unique(groups[rows]))
        if n_groups < MIN_GROUPS:
            few.append(f"{name!r} ({int(rows.sum())} files" + (f" in {n_groups} group(s))" if grouped else ")"))
    if few:
        unit = "groups" if grouped else "readable files"
        raise ValueError(f"folder: class(es) {listing(few, 10)} have fewer than {MIN_GROUPS} {unit}, too few to be in "
                         "train, valid and test: add recordings, merge or remove these classes, or give the split "
                         "yourself (a manifest with a split or fold column)")


def check_coverage(parts: list[np.ndarray], labels: np.ndarray, class_names: list[str], protocol: str) -> None:
    """Raise ``ValueError`` for classes with no training example; warn of those missing from valid or test."""
    counts = np.stack([np.bincount(labels[p], minlength=len(class_names)) for p in parts], axis=1)  # (classes, 3)

    def named(classes):
        return listing([f"{class_names[c]!r} ({'/'.join(map(str, counts[c]))})" for c in classes], 10)

    untrained = np.flatnonzero(counts[:, 0] == 0)
    if len(untrained):
        raise ValueError(f"folder: class(es) {named(untrained)} (train/valid/test files) have no training example "
                         f"under protocol {protocol!r}: add recordings to train, or remove these classes")
    partial = np.flatnonzero((counts[:, 1:] == 0).any(axis=1))
    if len(partial):
        warnings.warn(f"folder: class(es) {named(partial)} (train/valid/test files) are missing from valid or test "
                      f"under protocol {protocol!r}; they are trained on, but not measured there")


def warn_shared_groups(parts: list[np.ndarray], groups: np.ndarray) -> None:
    """Warn of groups with files in more than one of the ``parts``."""
    seen = [set(groups[p].tolist()) for p in parts]
    shared = sorted((seen[0] & seen[1]) | (seen[0] & seen[2]) | (seen[1] & seen[2]))
    if shared:
        warnings.warn(f"folder: {len(shared)} group(s) have files in more than one split ({listing(shared)}): "
                      "their recordings leak between train, valid and test; check the manifest's split or fold column")


def load_splits(config: dict) -> Splits:
    """Splits of the labelled audio under ``config["data_dir"]`` (see the module docstring), also reading
    ``manifest``, ``folder_extensions``, ``folder_split``, ``protocol``, ``fold``, ``seed``/``split_seed``,
    ``sample_rate``, ``clip_seconds``, ``clip_padding``, ``cache_dir`` and ``decode_workers``. ``x_*`` are
    :class:`Rows` of the decoded-audio cache, ``(n, round(clip_seconds * sample_rate))``."""
    if not config.get("data_dir"):
        raise FileNotFoundError(f"folder needs data_dir: {LAYOUTS}")
    root = Path(os.path.abspath(config["data_dir"]))
    if not root.is_dir():
        raise FileNotFoundError(f"no folder at {root}: {LAYOUTS}")
    shares = split_shares(config["folder_split"])
    manifest = manifest_path(config, root)
    if manifest is None:
        table, info = find_class_folders(root, config["folder_extensions"])
        source = f"class folders of {root}"
    else:
        table, info = read_manifest(manifest), {"unlabelled": 0, "ignored": 0}
        source = str(manifest)
    present = np.array([os.path.isfile(p) for p in table["path"]], dtype=bool)
    if not present.any():
        raise FileNotFoundError(f"no audio files in the {source}: {LAYOUTS}")
    if not present.all():
        warnings.warn(f"folder: {int((~present).sum())} file(s) of {manifest} are absent: "
                      f"{listing(table['path'][~present])}; left out (info['missing'])")
    table = table[present].reset_index(drop=True)
    protocol = resolve_protocol(config, table)
    paths = [Path(p) for p in table["path"]]
    sample_rate = config["sample_rate"]
    cache = cached_audio("folder", paths, Path(os.path.commonpath([root, *paths])), sample_rate,
                         round(config["clip_seconds"] * sample_rate), Path(config["cache_dir"] or PROJECT / "cache"),
                         workers=config["decode_workers"], min_fraction=0.0, padding=config["clip_padding"])
    class_names = sort_classes(table["label"])
    label_of = {name: i for i, name in enumerate(class_names)}
    kept = np.flatnonzero(cache.ok)  # cache rows of the readable files
    readable = table.iloc[kept].reset_index(drop=True)
    labels = readable["label"].map(label_of).to_numpy(dtype=np.int64)
    grouped = "group" in readable
    groups = readable["group"].to_numpy() if grouped else np.arange(len(readable))
    if protocol == "stratified":
        check_classes(labels, groups, class_names, grouped)
    parts = split_rows(readable, labels, groups, protocol, config["fold"], shares, split_seed(config))
    for name, part in zip(SPLIT_NAMES, parts):
        if len(part) == 0:
            raise ValueError(f"folder protocol {protocol!r} gives an empty {name} split for the {len(readable)} "
                             f"readable file(s) of the {source}")
    check_coverage(parts, labels, class_names, protocol)
    if grouped:
        warn_shared_groups(parts, groups)
    ids = [Path(p).relative_to(root).as_posix() if Path(p).is_relative_to(root) else Path(p).as_posix()
           for p in readable["path"]]
    y = torch.from_numpy(np.array(labels))
    x_parts = [Rows(cache.audio, kept[p]) for p in parts]
    y_parts = [y[torch.from_numpy(p)] for p in parts]
    id_parts = [[ids[i] for i in p] for p in parts]
    info = {"files": len(present), **dict(zip(SPLIT_NAMES, map(len, parts))), "unreadable": int((~cache.ok).sum()),
            "missing": int((~present).sum()), **info}
    return Splits(x_parts[0], y_parts[0], x_parts[1], y_parts[1], x_parts[2], y_parts[2], n_classes=len(class_names),
                  sample_rate=sample_rate, class_names=class_names, ids_train=id_parts[0], ids_valid=id_parts[1],
                  ids_test=id_parts[2], info=info)


def config_problems(config: dict) -> list[str]:
    """The folder keys' values: ``folder_split`` three positive shares summing to 1, ``folder_extensions`` a
    name ending or a non-empty list of them, ``manifest`` ``None`` or a path (read when the data loads)."""
    out = []
    try:
        split_shares(config["folder_split"])
    except ValueError as err:
        out.append(str(err))
    ext = config["folder_extensions"]
    if not (isinstance(ext, str) or (isinstance(ext, (list, tuple)) and ext and all(isinstance(e, str) for e in ext))):
        out.append(f"folder_extensions={ext!r}: must be a file ending such as 'wav' or a list of them")
    if config["manifest"] is not None and not isinstance(config["manifest"], str):
        out.append(f"manifest={config['manifest']!r}: must be None or the path of a CSV file")
    return out


register_corpus(Corpus(
    "folder", load_splits, "your own labelled audio: one sub-folder per class, or a manifest.csv "
    "(path,label[,split,fold,group]); WAV, FLAC, OGG, MP3",
    default_dir=None,
    download_hint="put your labelled audio in a folder (one sub-folder per class, or a manifest.csv with "
                  "path,label[,split,fold,group]) and pass --data_dir=<folder>",
    cache_keys=("data_dir", "manifest", "folder_extensions", "sample_rate", "clip_seconds", "clip_padding",
                "cache_dir"),
    defaults={
        "manifest": None,                  # a CSV path,label[,split,fold,group] (a relative path is under data_dir); None = <data_dir>/manifest.csv when there, else one sub-folder per class
        "folder_split": (0.7, 0.1, 0.2),   # train/valid/test shares of the stratified, grouped split; protocol fold: valid / (train + valid) of the other folds validates
        "folder_extensions": ("wav", "flac", "ogg", "mp3"),  # one sub-folder per class: the file name endings read as audio (any case); other files are ignored
    },
    problems=config_problems))
